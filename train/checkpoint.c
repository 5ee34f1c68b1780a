/* checkpoint.c — see checkpoint.h. */
#include "train/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fileio.h"
#include "formats/hf_model.h"
#include "formats/peft.h"

#define PREFIX     "checkpoint-"
#define PREFIX_LEN (sizeof PREFIX - 1)
#define TMP_SUFFIX ".tmp"
#define PATH_CAP   4096

int checkpoint_save_hf_model(void *ctx, const char *dir, CkError *err) {
    const CheckpointHfModel *c = ctx;
    return hf_model_save(c->model, c->config, dir, ST_F32, c->command_line, err);
}

int checkpoint_save_peft(void *ctx, const char *dir, CkError *err) {
    const CheckpointPeft *c = ctx;
    return peft_save(c->adapters, c->base, dir, c->base_model_name, c->command_line, err);
}

int checkpoint_path(const char *root, int64_t step, char *buf, size_t size, CkError *err) {
    const int n = snprintf(buf, size, "%s/" PREFIX "%lld", root, (long long)step);
    if (n < 0 || (size_t)n >= size) return ck_fail(err, "%s: checkpoint path too long", root);
    return 0;
}

/* Parses "checkpoint-<digits>" exactly (suffix: nothing) or "checkpoint-<digits>.tmp"
 * (suffix: ".tmp") into *step; returns 1 on a match. */
static int parse_name(const char *name, const char *suffix, int64_t *step) {
    if (strncmp(name, PREFIX, PREFIX_LEN) != 0) return 0;
    const char *p = name + PREFIX_LEN;
    int64_t v = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (++digits > 18) return 0; /* keeps v from overflowing */
        v = v * 10 + (*p - '0');
    }
    if (digits == 0 || strcmp(p, suffix) != 0) return 0;
    *step = v;
    return 1;
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A checkpoint directory is complete once it has its name: it was renamed from .tmp only
 * after everything in it was written. The state file is checked as well, so that a directory
 * made by hand or half deleted is not taken for one. */
static int is_complete(const char *dir) {
    char path[PATH_CAP];
    struct stat st;
    if (snprintf(path, sizeof path, "%s/%s", dir, CHECKPOINT_STATE_FILE) >= (int)sizeof path)
        return 0;
    return is_dir(dir) && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Deletes path and everything below it (without following symbolic links); a missing path
 * is not an error. */
static int remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -1;
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

typedef struct {
    int64_t step;
    int tmp; /* 1: a .tmp leftover */
} Entry;

static int by_step_desc(const void *a, const void *b) {
    const int64_t x = ((const Entry *)a)->step, y = ((const Entry *)b)->step;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Lists root's checkpoint directories (complete ones and .tmp leftovers) into a malloc'd
 * array sorted by step, newest first. */
static int list_checkpoints(const char *root, Entry **out, size_t *count, CkError *err) {
    *out = NULL;
    *count = 0;
    DIR *d = opendir(root);
    if (!d)
        return ck_fail(err, "%s: cannot read the checkpoint directory: %s", root, strerror(errno));
    size_t n = 0, cap = 0;
    Entry *list = NULL;
    const struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        Entry entry = {0, 0};
        char path[PATH_CAP];
        if (parse_name(e->d_name, "", &entry.step)) {
            if (snprintf(path, sizeof path, "%s/%s", root, e->d_name) >= (int)sizeof path ||
                !is_complete(path))
                continue;
        } else if (parse_name(e->d_name, TMP_SUFFIX, &entry.step)) {
            entry.tmp = 1;
        } else {
            continue;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            Entry *grown = realloc(list, cap * sizeof *grown);
            if (!grown) {
                rc = ck_fail(err, "%s: out of memory", root);
                break;
            }
            list = grown;
        }
        list[n++] = entry;
    }
    closedir(d);
    if (rc != 0) {
        free(list);
        return rc;
    }
    if (n > 1) qsort(list, n, sizeof *list, by_step_desc);
    *out = list;
    *count = n;
    return 0;
}

/* Step (4) of the protocol: deletes .tmp leftovers and the complete checkpoints below step
 * beyond the `keep` newest of them. */
static int prune(const char *root, int64_t step, int keep, CkError *err) {
    Entry *list;
    size_t n;
    if (list_checkpoints(root, &list, &n, err) != 0) return -1;
    int kept = 0, rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!list[i].tmp && list[i].step >= step) continue; /* the new one, or a later run's */
        if (!list[i].tmp && (keep < 0 || kept < keep)) {
            kept++;
            continue;
        }
        char path[PATH_CAP];
        snprintf(path, sizeof path, "%s/" PREFIX "%lld%s", root, (long long)list[i].step,
                 list[i].tmp ? TMP_SUFFIX : "");
        if (remove_tree(path) != 0)
            rc = ck_fail(err, "%s: cannot remove an old checkpoint: %s", path, strerror(errno));
    }
    free(list);
    return rc;
}

int checkpoint_save(const char *root, int keep, CheckpointSaveWeights save_weights, void *ctx,
                    const TrainState *ts, const TrainLayout *layout, const AdamW *opt,
                    CkError *err) {
    if (ts->step < 0) return ck_fail(err, "%s: negative checkpoint step", root);
    /* sized so that each name built from the previous one fits */
    char final_dir[PATH_CAP - 64], tmp_dir[PATH_CAP - 32], path[PATH_CAP];
    if (checkpoint_path(root, ts->step, final_dir, sizeof final_dir, err) != 0) return -1;
    snprintf(tmp_dir, sizeof tmp_dir, "%s" TMP_SUFFIX, final_dir);
    if (fileio_make_dirs(root, err) != 0) return -1;

    /* (1) everything into a fresh .tmp directory */
    if (remove_tree(tmp_dir) != 0)
        return ck_fail(err, "%s: cannot remove a leftover: %s", tmp_dir, strerror(errno));
    if (mkdir(tmp_dir, 0755) != 0)
        return ck_fail(err, "%s: cannot create: %s", tmp_dir, strerror(errno));
    int rc = 0;
    if (save_weights && save_weights(ctx, tmp_dir, err) != 0) rc = -1;
    snprintf(path, sizeof path, "%s/%s", tmp_dir, CHECKPOINT_STATE_FILE);
    if (rc == 0) rc = train_state_save(path, ts, layout, opt, err);
    if (rc == 0 && fileio_sync_dir(tmp_dir) != 0)
        rc = ck_fail(err, "%s: cannot sync: %s", tmp_dir, strerror(errno));
    if (rc != 0) {
        remove_tree(tmp_dir);
        return ck_wrap(err, "saving checkpoint %lld", (long long)ts->step);
    }

    /* (2) give it its name; a checkpoint of the same step is swapped out in one rename, so the
     * name always refers to a complete checkpoint. These are directories renamed as a whole,
     * which AtomicFile (util/fileio.h: one file) cannot express. */
    int exchanged = 0;
    if (is_dir(final_dir)) {
        if (renameat2(AT_FDCWD, tmp_dir, AT_FDCWD, final_dir, RENAME_EXCHANGE) == 0) {
            exchanged = 1;
            rc = remove_tree(tmp_dir);
        } else if (errno == EINVAL || errno == ENOSYS) {
            /* a file system without exchange: the old one goes first */
            rc = remove_tree(final_dir);
        } else {
            rc = -1;
        }
    }
    if (rc == 0 && !exchanged) rc = rename(tmp_dir, final_dir);
    if (rc != 0 || fileio_sync_dir(root) != 0)
        return ck_fail(err, "%s: cannot rename into place: %s", final_dir, strerror(errno));

    /* (3) point latest at it */
    char line[64];
    const int len = snprintf(line, sizeof line, PREFIX "%lld\n", (long long)ts->step);
    snprintf(path, sizeof path, "%s/%s", root, CHECKPOINT_LATEST_FILE);
    /* fileio_write_atomic also syncs root, so the new latest survives a crash */
    if (fileio_write_atomic(path, line, (size_t)len, err) != 0) return -1;

    /* (4) only now is it safe to delete older ones */
    return prune(root, ts->step, keep, err);
}

int checkpoint_find_latest(const char *root, char *dir, size_t size, int64_t *step, CkError *err) {
    char path[PATH_CAP];
    int64_t found = -1;
    struct stat st;
    if (stat(root, &st) != 0 && errno == ENOENT) return 0; /* never saved: a fresh start */
    if (snprintf(path, sizeof path, "%s/%s", root, CHECKPOINT_LATEST_FILE) >= (int)sizeof path)
        return ck_fail(err, "%s: path too long", root);
    CkError ignored;
    size_t len = 0;
    char *text = fileio_read_text(path, 256, &len, &ignored);
    if (text) {
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
            text[--len] = '\0';
        int64_t s;
        if (parse_name(text, "", &s) &&
            snprintf(path, sizeof path, "%s/%s", root, text) < (int)sizeof path &&
            is_complete(path))
            found = s;
        free(text);
    }
    if (found < 0) {
        /* no usable pointer: the newest complete checkpoint will do */
        Entry *list;
        size_t n;
        if (list_checkpoints(root, &list, &n, err) != 0) return -1;
        for (size_t i = 0; i < n && found < 0; i++)
            if (!list[i].tmp) found = list[i].step;
        free(list);
    }
    if (found < 0) return 0;
    if (step) *step = found;
    return checkpoint_path(root, found, dir, size, err) == 0 ? 1 : -1;
}
