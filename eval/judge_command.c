/* judge_command.c — a judge that is any program: one JSON object on its stdin, a preference
 * on its stdout. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/judge.h"
#include "util/subprocess.h"
#include "util/utf8.h"

typedef struct {
    char *command;
    double timeout;
} CommandJudge;

/* Parses the judge's stdout (trimmed): a bare number or {"preference": number}, with nothing
 * after either. */
static int parse_preference(const char *out, double *pref) {
    while (*out == ' ' || *out == '\n' || *out == '\t' || *out == '\r') out++;
    if (*out == '{') {
        const char *end = NULL;
        cJSON *root = cJSON_ParseWithOpts(out, &end, 0);
        while (end && (*end == ' ' || *end == '\n' || *end == '\t' || *end == '\r')) end++;
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "preference");
        int ok = cJSON_IsNumber(p) && end && *end == '\0';
        if (ok) *pref = p->valuedouble;
        cJSON_Delete(root);
        return ok ? 0 : -1;
    }
    char *end;
    double v = strtod(out, &end);
    if (end == out) return -1;
    while (*end == ' ' || *end == '\n' || *end == '\t' || *end == '\r') end++;
    if (*end) return -1;
    *pref = v;
    return 0;
}

static int command_judge(void *ctx, const char *instruction, const char *output_1,
                         const char *output_2, double *preference, char **raw, CkError *err) {
    const CommandJudge *cj = ctx;
    cJSON *in = cJSON_CreateObject();
    char *text = NULL;
    if (in && cJSON_AddStringToObject(in, "instruction", instruction) &&
        cJSON_AddStringToObject(in, "output_1", output_1) &&
        cJSON_AddStringToObject(in, "output_2", output_2))
        text = cJSON_PrintUnformatted(in);
    cJSON_Delete(in);
    size_t len = text ? strlen(text) : 0;
    char *line = text ? realloc(text, len + 2) : NULL;
    if (!line) {
        free(text);
        return ck_fail(err, "out of memory");
    }
    line[len] = '\n';
    line[len + 1] = '\0';
    SubprocessOptions opt = {cj->timeout, (size_t)1 << 20};
    char *out = NULL;
    size_t out_len = 0;
    int rc = subprocess_run_shell(cj->command, line, len + 1, &opt, &out, &out_len, err);
    free(line);
    if (rc != 0) return -1;
    /* its stdout is kept in raw_completion: annotations.json must stay UTF-8 text */
    const size_t bad = memchr(out, '\0', out_len)
                           ? (size_t)((char *)memchr(out, '\0', out_len) - out)
                           : utf8_first_invalid(out, out_len);
    if (bad < out_len) {
        ck_fail(err, "command '%s' printed %s at byte %zu", cj->command,
                out[bad] ? "bytes that are not UTF-8" : "a NUL byte", bad);
        free(out);
        return -1;
    }
    if (parse_preference(out, preference) != 0 || !(*preference >= 1 && *preference <= 2)) {
        /* quote the start of what it printed, on one line, cut between characters */
        char shown[120];
        size_t k = 0;
        for (const char *s = out; *s && k + 1 < sizeof shown; s++)
            shown[k++] = (*s == '\n' || *s == '\r') ? ' ' : *s;
        shown[utf8_complete_prefix(shown, k)] = '\0';
        ck_fail(err,
                "command '%s' printed \"%s\"; expected a preference in [1, 2] (a number, or "
                "{\"preference\": p})",
                cj->command, shown);
        free(out);
        return -1;
    }
    cJSON *r = cJSON_CreateObject();
    if (r && cJSON_AddStringToObject(r, "stdout", out)) *raw = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    free(out);
    return *raw ? 0 : ck_fail(err, "out of memory");
}

static void command_judge_close(void *ctx) {
    CommandJudge *cj = ctx;
    free(cj->command);
    free(cj);
}

int judge_command_create(Judge *j, const char *command, double timeout_seconds, const char *name,
                         CkError *err) {
    memset(j, 0, sizeof *j);
    if (!command || !*command) return ck_fail(err, "the judge command is empty");
    CommandJudge *cj = malloc(sizeof *cj);
    char *copy = malloc(strlen(command) + 1);
    if (!cj || !copy) {
        free(cj);
        free(copy);
        return ck_fail(err, "out of memory");
    }
    strcpy(copy, command);
    *cj = (CommandJudge){copy, timeout_seconds};
    snprintf(j->name, sizeof j->name, "%s", name ? name : "command");
    j->judge = command_judge;
    j->close = command_judge_close;
    j->ctx = cj;
    return 0;
}
