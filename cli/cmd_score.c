/* cmd_score.c — `cutkit score`: teacher-forced log-probabilities of texts, per token. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/commands.h"
#include "formats/lm.h"
#include "formats/peft.h"
#include "model/score_text.h"
#include "util/json_strict.h"
#include "util/threads.h"

static struct {
    const char *model, *tokenizer, *adapter, *text;
    int threads;
} opt;

static FlagSpec FLAGS[] = {
    FLAG_MODEL(&opt.model),
    FLAG_TOKENIZER(&opt.tokenizer),
    FLAG_ADAPTER(&opt.adapter),
    {"text", FLAG_STRING, &opt.text, NULL, 0, -1,
     "text to score; without it, JSON lines with a \"text\" field are read from stdin"},
    FLAG_THREADS(&opt.threads),
};

static const CommandSpec SPEC = {
    "score",
    "teacher-forced log-probabilities of texts, token by token",
    "[--text TEXT | < texts.jsonl] [--model PATH] [--adapter DIR]",
    "Prints one JSON line per text: tokens (BOS first), logprobs (log p of each token after\n"
    "the first, given the ones before), sum, mean_nll and perplexity.",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0],
};

const CommandSpec *cmd_score_spec(void) {
    return &SPEC;
}

/* Scores one text and prints its JSON line. */
static int score_one(const LanguageModel *lm, const LoraAdapters *ad, const char *text,
                     CkError *err) {
    TextScore s;
    if (score_text(&lm->model, &lm->tokenizer, ad, text, &s, err) != 0) return -1;
    cJSON *out = cJSON_CreateObject();
    cJSON *toks = cJSON_AddArrayToObject(out, "tokens");
    cJSON *lps = cJSON_AddArrayToObject(out, "logprobs");
    for (int i = 0; i < s.n; i++) cJSON_AddItemToArray(toks, cJSON_CreateNumber(s.ids[i]));
    for (int i = 0; i + 1 < s.n; i++) cJSON_AddItemToArray(lps, cJSON_CreateNumber(s.logprobs[i]));
    cJSON_AddNumberToObject(out, "sum", s.sum);
    cJSON_AddNumberToObject(out, "mean_nll", s.mean_nll);
    cJSON_AddNumberToObject(out, "perplexity", s.perplexity);
    char *line = cJSON_PrintUnformatted(out);
    printf("%s\n", line);
    free(line);
    cJSON_Delete(out);
    score_text_free(&s);
    return 0;
}

/* Scores the "text" of every JSON line of stdin; stops at the first bad line. */
static int score_lines(const LanguageModel *lm, const LoraAdapters *ad) {
    char *line = NULL;
    size_t cap = 0;
    int line_no = 0, rc = 0;
    CkError err = {{0}};
    ssize_t len;
    while (rc == 0 && (len = getline(&line, &cap, stdin)) > 0) {
        line_no++;
        JsonStrictError where;
        cJSON *rec = json_parse_exact(line, (size_t)len, &where);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(rec, "text");
        if (!rec && where.after_value) {
            rc = cli_error(&SPEC, 1, "stdin:%d: content after the JSON value at column %zu",
                           line_no, where.offset + 1);
        } else if (!cJSON_IsString(t)) {
            rc = cli_error(&SPEC, 1, "stdin:%d: expected a JSON object with a \"text\" string",
                           line_no);
        } else if (score_one(lm, ad, t->valuestring, &err) != 0) {
            rc = cli_error(&SPEC, 1, "stdin:%d: %s", line_no, err.msg);
        }
        cJSON_Delete(rec);
    }
    free(line);
    return rc;
}

int cmd_score(int argc, char **argv) {
    char *positional[1];
    int n_positional;
    int rc = flags_parse(&SPEC, argc, argv, positional, 0, &n_positional);
    if (rc != 0) return rc;
    threads_set(opt.threads);
    LanguageModel lm;
    LoraAdapters ad;
    CkError err = {{0}};
    if (lm_open(&lm, opt.model, opt.tokenizer, &err) != 0) return cli_fail(&SPEC, 1, &err);
    if (opt.adapter && peft_load(&ad, &lm.model, opt.adapter, &err) != 0) {
        lm_close(&lm);
        return cli_fail(&SPEC, 1, &err);
    }
    const LoraAdapters *adp = opt.adapter ? &ad : NULL;
    if (opt.text) {
        rc = score_one(&lm, adp, opt.text, &err) == 0 ? 0 : cli_fail(&SPEC, 1, &err);
    } else {
        rc = score_lines(&lm, adp);
    }
    if (opt.adapter) lora_free(&ad);
    lm_close(&lm);
    return rc;
}
