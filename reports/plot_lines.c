/* plot_lines.c — see plot_lines.h. */
#include "reports/plot_lines.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reports/groups.h"
#include "reports/labels.h"
#include "util/strbuf.h"

/* Legend texts longer than this are cut (a legend entry is one line of the plot). */
#define LABEL_MAX 120

static int same_settings(const cJSON *a, const cJSON *b) {
    if (!a || !b) return a == b;
    return cJSON_Compare(a, b, 1);
}

int plot_lines_add(PlotLines *l, const RunDir *rd, const char *const *exclude) {
    cJSON *s = run_config_settings(rd);
    if (rd->json[RUN_CONFIG] && !s) return -1;
    for (int i = 0; s && exclude && exclude[i]; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(s, exclude[i]);
    for (int k = 0; k < l->n; k++)
        if (same_settings(l->settings[k], s)) {
            cJSON_Delete(s);
            return k;
        }
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 8;
        cJSON **p = realloc(l->settings, sizeof *p * (size_t)cap);
        if (!p) {
            cJSON_Delete(s);
            return -1;
        }
        l->settings = p;
        l->cap = cap;
    }
    l->settings[l->n] = s;
    return l->n++;
}

/* 1 when every line has the same value (or none) at key. */
static int key_constant(const PlotLines *l, const char *key) {
    const cJSON *first = cJSON_GetObjectItemCaseSensitive(l->settings[0], key);
    for (int k = 1; k < l->n; k++)
        if (!same_settings(first, cJSON_GetObjectItemCaseSensitive(l->settings[k], key))) return 0;
    return 1;
}

/* "key = value" of one setting into b, with the paper's symbols and names ("key unset" when
 * the line lacks it). */
static int put_setting(StrBuf *b, const cJSON *settings, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(settings, key);
    const char *sym = !strcmp(key, "lambda")  ? "\xCE\xBB"
                      : !strcmp(key, "alpha") ? "\xCE\xB1"
                      : !strcmp(key, "gamma") ? "\xCE\xB3"
                                              : key;
    if (!strcmp(key, "objective") && cJSON_IsString(v)) {
        RunDir probe;
        memset(&probe, 0, sizeof probe);
        probe.json[RUN_CONFIG] = (cJSON *)settings;
        return strbuf_puts(b, label_objective(&probe).method);
    }
    if (!v) return strbuf_printf(b, "%s unset", sym);
    if (cJSON_IsNumber(v)) return strbuf_printf(b, "%s = %g", sym, v->valuedouble);
    if (cJSON_IsString(v)) return strbuf_printf(b, "%s = %s", sym, v->valuestring);
    if (cJSON_IsBool(v))
        return strbuf_printf(b, "%s = %s", sym, cJSON_IsTrue(v) ? "true" : "false");
    char *text = cJSON_PrintUnformatted(v);
    int rc = text ? strbuf_printf(b, "%s = %s", sym, text) : -1;
    free(text);
    return rc;
}

/* The label of line k over the varying keys (keys[0..n_keys)), malloc'd; with_unset 0 leaves
 * out the keys the line lacks (a DPO line has no λ to speak of). */
static char *line_label(const PlotLines *l, int k, const char *const *keys, int n_keys,
                        int with_unset) {
    StrBuf b = {0};
    int rc = strbuf_put(&b, "", 0), parts = 0;
    for (int i = 0; rc == 0 && i < n_keys; i++) {
        if (!with_unset && !cJSON_GetObjectItemCaseSensitive(l->settings[k], keys[i])) continue;
        if (parts++ > 0) rc = strbuf_puts(&b, ", ");
        if (rc == 0) rc = put_setting(&b, l->settings[k], keys[i]);
    }
    if (rc == 0 && parts == 0) rc = strbuf_puts(&b, "runs");
    char *s = rc == 0 ? strbuf_take(&b) : NULL;
    strbuf_free(&b);
    if (s && strlen(s) > LABEL_MAX) {
        size_t cut = LABEL_MAX - 3;
        while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80) cut--; /* whole characters */
        strcpy(s + cut, "...");
    }
    return s;
}

/* Collects into keys (room for room) the top-level keys in which the lines differ, in the
 * order of first appearance; returns how many. */
static int varying_keys(const PlotLines *l, const char **keys, int room) {
    int n = 0;
    for (int k = 0; k < l->n; k++) {
        const cJSON *c = l->settings[k] ? l->settings[k]->child : NULL;
        for (; c && n < room; c = c->next) {
            int seen = 0;
            for (int i = 0; i < n && !seen; i++) seen = !strcmp(keys[i], c->string);
            if (!seen && !key_constant(l, c->string)) keys[n++] = c->string;
        }
    }
    return n;
}

int plot_lines_label(PlotLines *l) {
    if (l->n == 0) return 0;
    l->labels = calloc((size_t)l->n, sizeof *l->labels);
    const char *keys[16];
    int n_keys = l->n > 1 ? varying_keys(l, keys, 16) : 0;
    if (!l->labels) return -1;
    for (int with_unset = 0; with_unset < 2; with_unset++) {
        for (int k = 0; k < l->n; k++) {
            free(l->labels[k]);
            if (!(l->labels[k] = line_label(l, k, keys, n_keys, with_unset))) return -1;
        }
        int clash = 0; /* two lines told apart only by a key one of them lacks */
        for (int k = 0; k < l->n && !clash; k++)
            for (int j = 0; j < k && !clash; j++) clash = !strcmp(l->labels[j], l->labels[k]);
        if (!clash) break;
    }
    return 0;
}

void plot_lines_free(PlotLines *l) {
    for (int k = 0; k < l->n; k++) {
        cJSON_Delete(l->settings[k]);
        if (l->labels) free(l->labels[k]);
    }
    free(l->settings);
    free(l->labels);
    memset(l, 0, sizeof *l);
}
