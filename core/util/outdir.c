/* outdir.c — see outdir.h. */
#include "util/outdir.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fileio.h"

int outdir_open(RunLock *lock, const char *dir, CkError *err) {
    if (fileio_make_dirs(dir, err) != 0 || runlock_acquire(lock, dir, err) != 0) return -1;
    outdir_remove_stale_temps(dir);
    return 0;
}

int outdir_open_file(RunLock *lock, const char *path, CkError *err) {
    const char *slash = strrchr(path, '/');
    if (slash && slash != path) {
        char *dir = strndup(path, (size_t)(slash - path));
        if (!dir) return ck_fail(err, "out of memory");
        const int rc = fileio_make_dirs(dir, err);
        free(dir);
        if (rc != 0) return -1;
    }
    if (runlock_acquire_file(lock, path, err) != 0) return -1;
    fileio_remove_stale_temps(path);
    return 0;
}

/* The writer's pid of a temporary name "NAME.tmp-PID" (NAME not empty), or 0 for any other
 * name. */
static long temp_owner(const char *name) {
    const char *mark = NULL;
    for (const char *p = strstr(name, ".tmp-"); p; p = strstr(p + 1, ".tmp-")) mark = p;
    if (!mark || mark == name) return 0;
    const char *digits = mark + 5;
    if (*digits < '1' || *digits > '9') return 0;
    char *end = NULL;
    errno = 0;
    const long pid = strtol(digits, &end, 10);
    return errno == 0 && *end == '\0' && pid > 0 ? pid : 0;
}

void outdir_remove_stale_temps(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    const long self = (long)getpid();
    struct dirent *e;
    while ((e = readdir(d))) {
        const long pid = temp_owner(e->d_name);
        if (pid == 0 || pid == self) continue;
        if (kill((pid_t)pid, 0) == 0 || errno == EPERM) continue; /* its writer still runs */
        char path[4096];
        struct stat st;
        if (fileio_path(path, sizeof path, dir, e->d_name) != 0) continue;
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode)) unlink(path);
    }
    closedir(d);
}
