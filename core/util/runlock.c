/* runlock.c — see runlock.h. */
#include "util/runlock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Fills err with who holds the lock, from the pid its holder wrote into the file. The
 * holder writes the pid just after locking, so a reader may find it empty or still holding
 * a dead holder's pid for a moment; an unreadable pid gives the generic message. */
static int fail_in_use(int fd, const char *what, CkError *err) {
    char text[32];
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    if (n > 0) {
        text[n] = '\0';
        char *end;
        errno = 0;
        long pid = strtol(text, &end, 10);
        if (errno == 0 && end != text && *end == '\n' && pid > 0 && pid <= INT_MAX)
            return ck_fail(err, "%s is in use by pid %ld", what, pid);
    }
    return ck_fail(err, "%s is in use by another process", what);
}

/* Replaces the file's content with "PID\n" and fsyncs it. The pid is written before the old
 * content is cut, so a reader sees the old pid or the new one, never an empty file (unless
 * the file is new). */
static int write_pid(int fd) {
    char text[32];
    int len = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    for (int done = 0; done < len;) {
        ssize_t w = pwrite(fd, text + done, (size_t)(len - done), done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        done += (int)w;
    }
    if (ftruncate(fd, len) != 0) return -1;
    return fsync(fd);
}

/* Opens (creating) lock_file and takes the lock on it; what names the locked thing in
 * messages. */
static int lock_at(RunLock *l, const char *lock_file, const char *what, CkError *err) {
    if (l->held) return ck_fail(err, "cannot lock %s: this RunLock already holds a lock", what);
    int fd = open(lock_file, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (fd < 0)
        return ck_fail(err, "cannot lock %s: cannot open %s: %s", what, lock_file, strerror(errno));
    int rc;
    do rc = flock(fd, LOCK_EX | LOCK_NB);
    while (rc != 0 && errno == EINTR);
    if (rc != 0) {
        if (errno == EWOULDBLOCK) {
            fail_in_use(fd, what, err);
        } else {
            /* ENOLCK: the file system offers no locks (e.g. an NFS mount without lockd) */
            ck_fail(err, "cannot lock %s: %s: %s", what, lock_file, strerror(errno));
        }
        close(fd); /* the only descriptor of this open file: nothing of ours stays locked */
        return -1;
    }
    if (write_pid(fd) != 0) {
        ck_fail(err, "cannot lock %s: cannot write %s: %s", what, lock_file, strerror(errno));
        close(fd);
        return -1;
    }
    l->fd = fd;
    l->held = 1;
    return 0;
}

int runlock_acquire(RunLock *l, const char *dir, CkError *err) {
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT) return ck_fail(err, "run directory %s does not exist", dir);
        return ck_fail(err, "cannot lock %s: %s", dir, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) return ck_fail(err, "cannot lock %s: not a directory", dir);
    size_t size = strlen(dir) + sizeof "/" RUNLOCK_FILE;
    char *lock_file = malloc(size);
    if (!lock_file) return ck_fail(err, "cannot lock %s: out of memory", dir);
    snprintf(lock_file, size, "%s/%s", dir, RUNLOCK_FILE);
    int rc = lock_at(l, lock_file, dir, err);
    free(lock_file);
    return rc;
}

int runlock_acquire_file(RunLock *l, const char *path, CkError *err) {
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    if (!*name || !strcmp(name, ".") || !strcmp(name, ".."))
        return ck_fail(err, "cannot lock %s: not a file name", path);
    /* "DIR/.NAME.cutkit.lock": DIR keeps its trailing '/', "" for a bare name */
    int dir_len = slash ? (int)(slash - path + 1) : 0;
    size_t size = strlen(path) + sizeof "." RUNLOCK_FILE;
    char *lock_file = malloc(size);
    if (!lock_file) return ck_fail(err, "cannot lock %s: out of memory", path);
    snprintf(lock_file, size, "%.*s.%s%s", dir_len, path, name, RUNLOCK_FILE);
    int rc = lock_at(l, lock_file, path, err);
    free(lock_file);
    return rc;
}

void runlock_release(RunLock *l) {
    if (!l->held) return;
    /* explicit unlock: a fork()ed child sharing this open file would otherwise keep it locked */
    flock(l->fd, LOCK_UN);
    close(l->fd);
    l->fd = -1;
    l->held = 0;
}
