/* fileio.c — see fileio.h. */
#include "util/fileio.h"

#include <errno.h>
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

int fileio_write_atomic(const char *path, const void *data, size_t size, CkError *err) {
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp) return ck_fail(err, "out of memory");
    snprintf(tmp, n, "%s.tmp-%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        ck_fail(err, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    int ok = fwrite(data, 1, size, f) == size && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int saved = errno;
        unlink(tmp);
        free(tmp);
        return ck_fail(err, "%s: cannot write: %s", path, strerror(saved));
    }
    free(tmp);
    if (fileio_sync_parent(path) != 0)
        return ck_fail(err, "%s: cannot sync its directory: %s", path, strerror(errno));
    return 0;
}

int fileio_sync_dir(const char *dir) {
    const int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    const int rc = fsync(fd);
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
