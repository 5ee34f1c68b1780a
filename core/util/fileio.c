/* fileio.c — see fileio.h. */
#include "util/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *fileio_read_text(const char *path, size_t max_bytes, size_t *size, CkError *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        ck_fail(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n < 0 || (size_t)n > max_bytes || fseek(f, 0, SEEK_SET) != 0) {
        ck_fail(err, "%s: not a regular file of at most %zu bytes", path, max_bytes);
    } else if (!(text = malloc((size_t)n + 1))) {
        ck_fail(err, "%s: out of memory", path);
    } else if (fread(text, 1, (size_t)n, f) != (size_t)n) {
        ck_fail(err, "%s: cannot read", path);
        free(text);
        text = NULL;
    } else {
        text[n] = '\0';
        if (size) *size = (size_t)n;
    }
    fclose(f);
    return text;
}

int atomic_file_open(AtomicFile *a, const char *path, CkError *err) {
    memset(a, 0, sizeof *a);
    size_t n = strlen(path) + 32;
    a->path = strdup(path);
    a->tmp = malloc(n);
    if (!a->path || !a->tmp) {
        atomic_file_abort(a);
        return ck_fail(err, "out of memory");
    }
    snprintf(a->tmp, n, "%s.tmp-%ld", path, (long)getpid());
    a->f = fopen(a->tmp, "wb");
    if (!a->f) {
        ck_fail(err, "%s: cannot create: %s", a->tmp, strerror(errno));
        free(a->tmp); /* nothing to remove */
        a->tmp = NULL;
        atomic_file_abort(a);
        return -1;
    }
    return 0;
}

int atomic_file_commit(AtomicFile *a, CkError *err) {
    if (!a->f) {
        atomic_file_abort(a);
        return ck_fail(err, "internal error: atomic file not open");
    }
    errno = 0;
    int ok = !ferror(a->f) && fflush(a->f) == 0 && fsync(fileno(a->f)) == 0;
    int saved = errno;
    ok = (fclose(a->f) == 0) && ok;
    if (!saved) saved = errno;
    a->f = NULL;
    if (ok && rename(a->tmp, a->path) != 0) ok = 0, saved = errno;
    if (!ok) {
        ck_fail(err, "%s: cannot write: %s", a->path, saved ? strerror(saved) : "write error");
        atomic_file_abort(a);
        return -1;
    }
    free(a->tmp);
    a->tmp = NULL; /* renamed: nothing left to remove */
    int rc = fileio_sync_parent(a->path);
    if (rc != 0) ck_fail(err, "%s: cannot sync its directory: %s", a->path, strerror(errno));
    atomic_file_abort(a);
    return rc;
}

void atomic_file_abort(AtomicFile *a) {
    if (a->f) fclose(a->f);
    if (a->tmp) unlink(a->tmp);
    free(a->tmp);
    free(a->path);
    memset(a, 0, sizeof *a);
}

int fileio_write_atomic(const char *path, const void *data, size_t size, CkError *err) {
    AtomicFile a;
    if (atomic_file_open(&a, path, err) != 0) return -1;
    if (size && fwrite(data, 1, size, a.f) != size) {
        ck_fail(err, "%s: cannot write: %s", path, strerror(errno));
        atomic_file_abort(&a);
        return -1;
    }
    return atomic_file_commit(&a, err);
}

void fileio_remove_stale_temps(const char *path) {
    char *dir = strdup(path);
    if (!dir) return;
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : path;
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    DIR *d = opendir(dir);
    if (!d) {
        free(dir);
        return;
    }
    size_t blen = strlen(base);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, base, blen) || strncmp(e->d_name + blen, ".tmp-", 5)) continue;
        char *end = NULL;
        long pid = strtol(e->d_name + blen + 5, &end, 10);
        if (!end || *end || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno == EPERM) continue; /* its writer still runs */
        char full[4096];
        if (snprintf(full, sizeof full, "%s/%s", dir, e->d_name) < (int)sizeof full) unlink(full);
    }
    closedir(d);
    free(dir);
}

int fileio_sync_dir(const char *dir) {
    const int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    /* some filesystems cannot sync a directory (EINVAL): the rename is then as durable as
     * they make it, which is not a write error */
    if (rc != 0 && errno == EINVAL) rc = 0;
    const int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int fileio_sync_parent(const char *path) {
    char *dir = strdup(path);
    if (!dir) return -1;
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    const int rc = fileio_sync_dir(dir);
    const int saved = errno;
    free(dir);
    errno = saved;
    return rc;
}

int fileio_path(char *buf, size_t size, const char *dir, const char *name) {
    int n = snprintf(buf, size, "%s/%s", dir, name);
    return n >= 0 && (size_t)n < size ? 0 : -1;
}

int fileio_make_dirs(const char *path, CkError *err) {
    char *p = strdup(path);
    if (!p) return ck_fail(err, "out of memory");
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            int e = errno;
            ck_fail(err, "%s: cannot create directory: %s", p, strerror(e));
            free(p);
            return -1;
        }
        *s = saved;
        if (!saved) break;
    }
    free(p);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return ck_fail(err, "%s: not a directory", path);
    return 0;
}
