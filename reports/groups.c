/* groups.c — see groups.h. */
#include "reports/groups.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/strbuf.h"

static const char *const BOOKKEEPING[] = {
    "seed",      "label",   "command",  "steps_done", "final_loss",
    "timestamp", "started", "finished", "hostname",
};

int run_config_is_bookkeeping(const char *key) {
    for (size_t i = 0; i < sizeof BOOKKEEPING / sizeof BOOKKEEPING[0]; i++)
        if (!strcmp(key, BOOKKEEPING[i])) return 1;
    return 0;
}

/* The run's seed from config.json, with *ok 0 when it has none (or no config.json). */
static double run_seed(const RunDir *rd, int *ok) {
    double s = rundir_config_number(rd, "seed");
    *ok = isfinite(s);
    return s;
}

/* s with every occurrence of dir replaced by "{run}", malloc'd; NULL when out of memory. */
static char *replace_dir(const char *s, const char *dir) {
    size_t k = strlen(dir);
    StrBuf b = {0};
    if (strbuf_put(&b, "", 0) != 0) return NULL;
    for (const char *p = s; *p;) {
        const char *hit = k ? strstr(p, dir) : NULL;
        size_t keep = hit ? (size_t)(hit - p) : strlen(p);
        if (strbuf_put(&b, p, keep) != 0 || (hit && strbuf_puts(&b, "{run}") != 0)) {
            strbuf_free(&b);
            return NULL;
        }
        p += keep + (hit ? k : 0);
    }
    return strbuf_take(&b);
}

/* Replaces the run's directory (each of dirs[0..n_dirs)) in every string under node. */
static int normalise_strings(cJSON *node, char *const *dirs, int n_dirs) {
    if (cJSON_IsString(node)) {
        for (int d = 0; d < n_dirs; d++) {
            if (!strstr(node->valuestring, dirs[d])) continue;
            char *r = replace_dir(node->valuestring, dirs[d]);
            int ok = r && cJSON_SetValuestring(node, r);
            free(r);
            if (!ok) return -1;
        }
        return 0;
    }
    for (cJSON *c = node->child; c; c = c->next)
        if (normalise_strings(c, dirs, n_dirs) != 0) return -1;
    return 0;
}

/* A directory as given (trailing slashes dropped) and by realpath, malloc'd; returns how many
 * differ (0 when out of memory). */
static int dir_forms(const char *path, char *dirs[2]) {
    dirs[0] = strdup(path);
    dirs[1] = realpath(path, NULL);
    if (!dirs[0]) return 0;
    size_t n = strlen(dirs[0]);
    while (n > 1 && dirs[0][n - 1] == '/') dirs[0][--n] = '\0';
    int k = 1;
    if (dirs[1] && strcmp(dirs[1], dirs[0]) != 0)
        k = 2;
    else {
        free(dirs[1]);
        dirs[1] = NULL;
    }
    return k;
}

/* config.json without its bookkeeping keys and with the run's directory replaced, or NULL
 * (no config.json, or out of memory). Caller deletes it. */
static cJSON *normalised_config(const RunDir *rd) {
    const cJSON *config = rd->json[RUN_CONFIG];
    if (!config) return NULL;
    cJSON *c = cJSON_Duplicate(config, 1);
    if (!c) return NULL;
    for (size_t i = 0; i < sizeof BOOKKEEPING / sizeof BOOKKEEPING[0]; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(c, BOOKKEEPING[i]);
    char *dirs[2] = {NULL, NULL};
    int n_dirs = dir_forms(rd->path, dirs);
    int rc = n_dirs > 0 ? normalise_strings(c, dirs, n_dirs) : -1;
    free(dirs[0]);
    free(dirs[1]);
    if (rc != 0) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

cJSON *run_config_settings(const RunDir *rd) {
    return normalised_config(rd);
}

int run_config_replace_dir(cJSON *node, const char *dir) {
    char *dirs[2] = {NULL, NULL};
    int n_dirs = dir_forms(dir, dirs);
    int rc = n_dirs > 0 ? normalise_strings(node, dirs, n_dirs) : -1;
    free(dirs[0]);
    free(dirs[1]);
    return rc;
}

/* The rule of groups.h on configurations already normalised. */
static int same_setting(const RunDir *a, const cJSON *na, const RunDir *b, const cJSON *nb) {
    int ok_a, ok_b;
    double sa = run_seed(a, &ok_a), sb = run_seed(b, &ok_b);
    return ok_a && ok_b && sa != sb && na && nb && cJSON_Compare(na, nb, 1);
}

int run_same_setting(const RunDir *a, const RunDir *b) {
    cJSON *na = normalised_config(a), *nb = normalised_config(b);
    int same = same_setting(a, na, b, nb);
    cJSON_Delete(na);
    cJSON_Delete(nb);
    return same;
}

/* Whether run r may join group g: the same setting as its first run, and a seed none of
 * its runs has. */
static int joins(const RunGroup *g, const RunDir *runs, cJSON *const *norm, int r) {
    for (int m = 0; m < g->n; m++) {
        int i = g->members[m];
        if (!same_setting(&runs[i], norm[i], &runs[r], norm[r])) return 0;
    }
    return 1;
}

static int assign(RunGroups *out, const RunDir *runs, int n_runs, cJSON *const *norm, int per_run) {
    for (int r = 0; r < n_runs; r++) {
        RunGroup *g = NULL;
        for (int k = 0; !per_run && k < out->n && !g; k++)
            if (joins(&out->groups[k], runs, norm, r)) g = &out->groups[k];
        if (!g) {
            g = &out->groups[out->n++];
            if (!(g->members = calloc((size_t)n_runs, sizeof(int)))) return -1;
        }
        g->members[g->n++] = r;
    }
    for (int k = 0; k < out->n; k++) {
        RunGroup *g = &out->groups[k];
        if (!(g->label = run_group_label(runs, g->members, g->n))) return -1;
    }
    return 0;
}

int run_groups_build(RunGroups *out, const RunDir *runs, int n_runs, int per_run, CkError *err) {
    memset(out, 0, sizeof *out);
    out->groups = calloc((size_t)n_runs + 1, sizeof *out->groups);
    cJSON **norm = calloc((size_t)n_runs + 1, sizeof *norm);
    int rc = out->groups && norm ? 0 : -1;
    for (int r = 0; rc == 0 && !per_run && r < n_runs; r++)
        if (runs[r].json[RUN_CONFIG] && !(norm[r] = normalised_config(&runs[r]))) rc = -1;
    if (rc == 0) rc = assign(out, runs, n_runs, norm, per_run);
    for (int r = 0; norm && r < n_runs; r++) cJSON_Delete(norm[r]);
    free(norm);
    if (rc != 0) {
        run_groups_free(out);
        return ck_fail(err, "out of memory");
    }
    return 0;
}

void run_groups_free(RunGroups *g) {
    for (int k = 0; g->groups && k < g->n; k++) {
        free(g->groups[k].label);
        free(g->groups[k].members);
    }
    free(g->groups);
    memset(g, 0, sizeof *g);
}

static int is_separator(char c) {
    return c && strchr(" ,;_-=:/.(", c) != NULL;
}

/* Where a seed word ("seed" or "s", any case, after the start or a non-alphanumeric byte)
 * ends right before position end of s, optionally followed by one of "=_-"; returns the
 * word's start, or -1. */
static long seed_word_before(const char *s, long end) {
    if (end > 0 && strchr("=_-", s[end - 1])) end--;
    static const char *const WORDS[] = {"seed", "s"};
    for (int w = 0; w < 2; w++) {
        long k = (long)strlen(WORDS[w]), start = end - k;
        if (start < 0 || strncasecmp(s + start, WORDS[w], (size_t)k) != 0) continue;
        if (start == 0 || !isalnum((unsigned char)s[start - 1])) return start;
    }
    return -1;
}

/* label with its last mention of seed removed (see run_group_label), malloc'd; a copy of
 * label when it has none; NULL when out of memory. */
static char *strip_seed(const char *label, double seed) {
    char digits[32];
    snprintf(digits, sizeof digits, "%.0f", seed);
    long n = (long)strlen(label), k = (long)strlen(digits);
    for (long p = n - k; p >= 0; p--) {
        if (strncmp(label + p, digits, (size_t)k) != 0) continue;
        char after = label[p + k], before = p > 0 ? label[p - 1] : '\0';
        if (isdigit((unsigned char)after) || after == '.' || isdigit((unsigned char)before) ||
            before == '.')
            continue;
        long start = seed_word_before(label, p), end = p + k;
        if (start < 0) continue;
        if (start > 0 && is_separator(label[start - 1]))
            start--;
        else if (is_separator(label[end]))
            end++;
        char *r = malloc((size_t)(n - (end - start)) + 1);
        if (!r) return NULL;
        memcpy(r, label, (size_t)start);
        strcpy(r + start, label + end);
        return r;
    }
    return strdup(label);
}

/* 1 when all n strings equal v[0] and it is not empty. */
static int all_equal(char *const *v, int n) {
    for (int i = 1; i < n; i++)
        if (strcmp(v[i], v[0]) != 0) return 0;
    return v[0][0] != '\0';
}

/* The longest common prefix of the members' labels without trailing separators, or NULL. */
static char *common_prefix(const RunDir *runs, const int *members, int n) {
    const char *first = runs[members[0]].label;
    size_t len = strlen(first);
    for (int i = 1; i < n; i++) {
        const char *l = runs[members[i]].label;
        size_t k = 0;
        while (k < len && l[k] == first[k]) k++;
        len = k;
    }
    while (len > 0 && is_separator(first[len - 1])) len--;
    return len ? strndup(first, len) : NULL;
}

char *run_group_label(const RunDir *runs, const int *members, int n) {
    char **stripped = calloc((size_t)n + 1, sizeof *stripped);
    if (!stripped) return NULL;
    char *label = NULL;
    int ok = 1, same_label = 1;
    for (int i = 0; i < n; i++) {
        int has_seed;
        double seed = run_seed(&runs[members[i]], &has_seed);
        const char *l = runs[members[i]].label;
        same_label &= !strcmp(l, runs[members[0]].label);
        stripped[i] = has_seed ? strip_seed(l, seed) : strdup(l);
        ok &= stripped[i] != NULL;
    }
    if (ok && same_label)
        label = strdup(runs[members[0]].label);
    else if (ok && all_equal(stripped, n))
        label = strdup(stripped[0]);
    else if (ok && !(label = common_prefix(runs, members, n)))
        label = strdup(runs[members[0]].label);
    for (int i = 0; i < n; i++) free(stripped[i]);
    free(stripped);
    return label;
}

int run_groups_find(const RunGroups *g, const RunDir *runs, const char *key) {
    for (int k = 0; k < g->n; k++)
        if (!strcmp(g->groups[k].label, key)) return k;
    char *want = realpath(key, NULL);
    int found = -1;
    for (int k = 0; k < g->n && found < 0; k++)
        for (int m = 0; m < g->groups[k].n && found < 0; m++) {
            const RunDir *rd = &runs[g->groups[k].members[m]];
            char *have = want ? realpath(rd->path, NULL) : NULL;
            if (!strcmp(rd->path, key) || (have && !strcmp(have, want))) found = k;
            free(have);
        }
    free(want);
    return found;
}
