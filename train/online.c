/* online.c — instruction pools, generation and judging for online alignment. */
#include "train/online.h"

#include <cjson/cJSON.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/synth.h"
#include "model/generate.h"
#include "util/fileio.h"
#include "util/jsonl.h"
#include "util/strbuf.h"
#include "util/pystr.h"
#include "util/subprocess.h"
#include "util/utf8.h"

#define MAX_INSTRUCTIONS_FILE (1u << 30)

static int pool_add(InstructionPool *pool, const cJSON *item, const char *path, int index,
                    CkError *err) {
    const char *instruction = NULL, *input = NULL;
    if (cJSON_IsString(item)) {
        instruction = item->valuestring;
    } else if (cJSON_IsObject(item)) {
        const cJSON *ins = cJSON_GetObjectItemCaseSensitive(item, "instruction");
        const cJSON *inp = cJSON_GetObjectItemCaseSensitive(item, "input");
        if (cJSON_IsString(ins)) instruction = ins->valuestring;
        if (cJSON_IsString(inp)) input = inp->valuestring;
    }
    if (!instruction)
        return ck_fail(err,
                       "%s: item %d: expected a string or an object with a string "
                       "\"instruction\"",
                       path, index);
    /* every later file (generations, judgments) holds it; training refuses ill-formed text */
    const char *bad = !utf8_valid(instruction, strlen(instruction)) ? instruction
                      : input && !utf8_valid(input, strlen(input))  ? input
                                                                    : NULL;
    if (bad)
        return ck_fail(err, "%s: item %d: the %s is not valid UTF-8 (byte %zu)", path, index,
                       bad == instruction ? "instruction" : "input",
                       utf8_first_invalid(bad, strlen(bad)));
    char *joined = template_join_input(instruction, input);
    char **grown = realloc(pool->instructions, sizeof(char *) * (size_t)(pool->n + 1));
    if (!joined || !grown) {
        free(joined);
        if (grown) pool->instructions = grown;
        return ck_fail(err, "out of memory");
    }
    pool->instructions = grown;
    pool->instructions[pool->n++] = joined;
    return 0;
}

int online_load_instructions(InstructionPool *pool, const char *path, CkError *err) {
    memset(pool, 0, sizeof *pool);
    size_t size = 0;
    char *text = fileio_read_text(path, MAX_INSTRUCTIONS_FILE, &size, err);
    if (!text) return -1;
    int rc = 0;
    const char *p = text;
    while (isspace((unsigned char)*p)) p++;
    if (*p == '[') {
        cJSON *root = cJSON_Parse(text);
        if (!root) {
            rc = ck_fail(err, "%s: not valid JSON (expected an array of instructions)", path);
        } else {
            int index = 0;
            const cJSON *item;
            cJSON_ArrayForEach(item, root) {
                if ((rc = pool_add(pool, item, path, index++, err)) != 0) break;
            }
            cJSON_Delete(root);
        }
    } else {
        /* JSON lines: one item per non-blank line, numbered as an editor numbers them */
        JsonlCursor c;
        jsonl_init(&c, text, size);
        const char *line;
        size_t n;
        while (rc == 0 && jsonl_next_line(&c, &line, &n)) {
            cJSON *obj = cJSON_ParseWithLength(line, n);
            if (!obj)
                rc = ck_fail(err, "%s:%ld: not a JSON object", path, c.line);
            else
                rc = pool_add(pool, obj, path, (int)c.line, err);
            cJSON_Delete(obj);
        }
    }
    free(text);
    if (rc == 0 && pool->n == 0) rc = ck_fail(err, "%s: no instructions", path);
    if (rc != 0) online_instructions_free(pool);
    return rc;
}

void online_instructions_free(InstructionPool *pool) {
    for (int i = 0; i < pool->n; i++) free(pool->instructions[i]);
    free(pool->instructions);
    memset(pool, 0, sizeof *pool);
}

typedef struct {
    StrBuf text;
    int failed;
} TextSink;

static int sink_piece(void *ctx, int token, const char *piece, size_t len) {
    (void)token;
    TextSink *s = ctx;
    if (strbuf_put(&s->text, piece, len) != 0) {
        s->failed = 1;
        return 1;
    }
    return 0;
}

int online_generate(const LanguageModel *lm, const Template *tpl, const char *instruction,
                    const OnlineGenerateOptions *o, int index, char **response, CkError *err) {
    *response = NULL;
    char *prompt = template_format(tpl->prompt_no_input, instruction, NULL, err);
    if (!prompt) return -1;
    GenerateOptions g = {o->max_tokens, o->temperature, o->top_p, o->seed + (uint64_t)index, 1};
    TextSink sink = {0};
    GenerateStats stats;
    int rc =
        generate_text(&lm->model, &lm->tokenizer, prompt, &g, sink_piece, &sink, NULL, &stats, err);
    free(prompt);
    if (rc == 0 && (sink.failed || strbuf_put(&sink.text, "", 0) != 0))
        rc = ck_fail(err, "out of memory");
    if (rc != 0) {
        strbuf_free(&sink.text);
        return -1;
    }
    /* A model that goes on to write a second example stops being an answer there (unless
     * kept as the reference keeps it). */
    char *split = tpl->response_split[0] && !o->keep_after_split
                      ? strstr(sink.text.p, tpl->response_split)
                      : NULL;
    if (split) *split = '\0';
    /* The model's bytes need not be UTF-8 (a byte-fallback token can be part of a character,
     * or a stray byte): every file downstream (the judgments, training) must be, so each
     * ill-formed sequence becomes U+FFFD here. */
    StrBuf clean = {0};
    const int ok = utf8_put_lossy(&clean, sink.text.p, strlen(sink.text.p)) == 0 &&
                   strbuf_put(&clean, "", 0) == 0;
    strbuf_free(&sink.text);
    if (!ok) {
        strbuf_free(&clean);
        return ck_fail(err, "out of memory");
    }
    if (o->strip) { /* on the valid text, as Python strips the str that decode() gave */
        size_t start, len;
        pystr_strip(clean.p, clean.n, &start, &len);
        memmove(clean.p, clean.p + start, len);
        clean.p[len] = '\0';
    }
    *response = clean.p;
    return 0;
}

int online_judge_open(OnlineJudge *j, const char *spec, double timeout_seconds, CkError *err) {
    memset(j, 0, sizeof *j);
    j->timeout_seconds = timeout_seconds;
    if (!strcmp(spec, "synth")) {
        j->kind = ONLINE_JUDGE_SYNTH;
        return 0;
    }
    if (!strncmp(spec, "command:", 8) && spec[8]) {
        j->kind = ONLINE_JUDGE_COMMAND;
        j->command = spec + 8;
        return 0;
    }
    if (!strncmp(spec, "file:", 5) && spec[5]) {
        j->kind = ONLINE_JUDGE_FILE;
        const char *path = spec + 5;
        size_t len = strlen(path);
        JudgmentFormat fmt =
            (len > 6 && !strcmp(path + len - 6, ".jsonl")) ? JUDGMENTS_JSONL : JUDGMENTS_CUT_JSON;
        return judgments_load(&j->file, path, fmt, NULL, err);
    }
    return ck_fail(err, "judge '%s': expected synth, file:PATH or command:CMD", spec);
}

void online_judge_close(OnlineJudge *j) {
    if (j->kind == ONLINE_JUDGE_FILE) judgments_free(&j->file);
    memset(j, 0, sizeof *j);
}

/* The command's answer (out_len bytes): a JSON object {"judgment": string | null} and nothing
 * after it, or plain text where blank means nothing was found wrong. A NUL byte fails (it
 * would cut the text short); the text's UTF-8 is online_judge's to check. */
static int parse_command_answer(const char *out, size_t out_len, char **judgment, CkError *err) {
    if (memchr(out, '\0', out_len))
        return ck_fail(err, "the judge printed a NUL byte (at byte %zu)",
                       (size_t)((const char *)memchr(out, '\0', out_len) - out));
    const char *p = out;
    while (isspace((unsigned char)*p)) p++;
    size_t len = strlen(p);
    while (len > 0 && isspace((unsigned char)p[len - 1])) len--;
    if (len == 0) return 0;
    if (*p == '{') {
        const char *end = NULL;
        cJSON *obj = cJSON_ParseWithLengthOpts(p, len, &end, 0);
        if (obj && end != p + len) {
            cJSON_Delete(obj);
            return ck_fail(err, "the judge printed something after its JSON object");
        }
        const cJSON *jv = obj ? cJSON_GetObjectItemCaseSensitive(obj, "judgment") : NULL;
        int ok = jv && (cJSON_IsNull(jv) || cJSON_IsString(jv));
        if (ok && cJSON_IsString(jv) && jv->valuestring[0]) {
            *judgment = strdup(jv->valuestring);
            ok = *judgment != NULL;
        }
        cJSON_Delete(obj);
        return ok ? 0
                  : ck_fail(err, "the judge printed a JSON object without a string or null "
                                 "\"judgment\"");
    }
    *judgment = strndup(p, len);
    return *judgment ? 0 : ck_fail(err, "out of memory");
}

static int judge_command(const OnlineJudge *j, const char *instruction, const char *response,
                         char **judgment, CkError *err) {
    cJSON *req = cJSON_CreateObject();
    if (!req || !cJSON_AddStringToObject(req, "instruction", instruction) ||
        !cJSON_AddStringToObject(req, "output", response)) {
        cJSON_Delete(req);
        return ck_fail(err, "out of memory");
    }
    char *body = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    if (!body) return ck_fail(err, "out of memory");
    char *out = NULL;
    size_t out_len = 0;
    SubprocessOptions so = {j->timeout_seconds, 0};
    int rc = subprocess_run_shell(j->command, body, strlen(body), &so, &out, &out_len, err);
    free(body);
    if (rc == 0) rc = parse_command_answer(out, out_len, judgment, err);
    free(out);
    return rc;
}

static int judge_file(const OnlineJudge *j, const char *instruction, const char *response,
                      char **judgment, CkError *err) {
    for (int i = 0; i < j->file.n; i++) {
        const JudgmentRecord *r = &j->file.records[i];
        char *joined = template_join_input(r->instruction, r->input);
        if (!joined) return ck_fail(err, "out of memory");
        int match = !strcmp(joined, instruction) && !strcmp(r->output, response);
        free(joined);
        if (!match) continue;
        if (r->judgment && !(r->has_score && r->score >= 7)) {
            *judgment = strdup(r->judgment);
            if (!*judgment) return ck_fail(err, "out of memory");
        }
        return 0;
    }
    return ck_fail(err, "the judgment file has no record for this instruction and output");
}

/* Asks the judge of j's kind. */
static int ask_judge(const OnlineJudge *j, const char *instruction, const char *response,
                     char **judgment, int *n_errors, CkError *err) {
    switch (j->kind) {
    case ONLINE_JUDGE_SYNTH: {
        SynthSpan *spans = NULL;
        int n_spans = 0;
        int rc =
            synth_judge_response(instruction, response, judgment, &spans, &n_spans, n_errors, err);
        free(spans);
        return rc;
    }
    case ONLINE_JUDGE_COMMAND:
        return judge_command(j, instruction, response, judgment, err);
    case ONLINE_JUDGE_FILE:
        return judge_file(j, instruction, response, judgment, err);
    }
    return ck_fail(err, "unknown judge");
}

int online_judge(const OnlineJudge *j, const char *instruction, const char *response,
                 char **judgment, int *n_errors, CkError *err) {
    *judgment = NULL;
    *n_errors = -1;
    if (ask_judge(j, instruction, response, judgment, n_errors, err) != 0) {
        free(*judgment);
        *judgment = NULL;
        return -1;
    }
    /* what training will read back: a judgment that is not text is the judge's failure, not
     * a record that every later stage refuses */
    const size_t len = *judgment ? strlen(*judgment) : 0;
    if (*judgment && !utf8_valid(*judgment, len)) {
        const size_t at = utf8_first_invalid(*judgment, len);
        free(*judgment);
        *judgment = NULL;
        return ck_fail(err, "the judgment is not valid UTF-8 (byte %zu)", at);
    }
    return 0;
}
