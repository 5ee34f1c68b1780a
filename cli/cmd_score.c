/* cmd_score.c — `cutkit score`: teacher-forced log-probabilities of texts, per token. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "formats/lm.h"
#include "formats/peft.h"
#include "util/threads.h"

static struct {
    const char *model, *tokenizer, *adapter, *text;
    int threads;
} opt;

static FlagSpec FLAGS[] = {
    {"model", FLAG_STRING, &opt.model, NULL, 0, -1,
     "llama2.c .bin or Hugging Face folder; default: embedded stories260K"},
    {"tokenizer", FLAG_STRING, &opt.tokenizer, NULL, 0, -1, "tokenizer (default: the model's)"},
    {"adapter", FLAG_STRING, &opt.adapter, NULL, 0, -1, "PEFT LoRA adapter folder to apply"},
    {"text", FLAG_STRING, &opt.text, NULL, 0, -1,
     "text to score; without it, JSON lines with a \"text\" field are read from stdin"},
    {"threads", FLAG_INT, &opt.threads, "0", 0, 1024, "threads (0: one per core)"},
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

static int score_one(const LanguageModel *lm, const LoraAdapters *ad, const char *text,
                     CkError *err) {
    int *ids = NULL, n = 0, rc = -1;
    if (tokenizer_encode(&lm->tokenizer, text, 1, 0, &ids, &n, err) != 0) return -1;
    if (n > lm->model.config.seq_len) {
        free(ids);
        return ck_fail(err, "the text has %d tokens; the model's context is %d", n,
                       lm->model.config.seq_len);
    }
    Activations a;
    int *targets = malloc(sizeof(int) * (size_t)n);
    double *lp = malloc(sizeof(double) * (size_t)n);
    if (!targets || !lp || activations_init(&a, &lm->model, n, n, 0, err) != 0) goto done;
    for (int i = 0; i < n; i++) targets[i] = i + 1 < n ? ids[i + 1] : -1;
    int offsets[2] = {0, n};
    TokenBatch b = {1, offsets, ids};
    if (model_forward(&lm->model, &a, &b, NULL, ad, err) != 0 ||
        model_logprobs(&lm->model, &a, targets, lp, err) != 0) {
        activations_free(&a);
        goto done;
    }
    activations_free(&a);
    cJSON *out = cJSON_CreateObject();
    cJSON *toks = cJSON_AddArrayToObject(out, "tokens");
    cJSON *lps = cJSON_AddArrayToObject(out, "logprobs");
    double sum = 0;
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(toks, cJSON_CreateNumber(ids[i]));
    for (int i = 0; i + 1 < n; i++) {
        cJSON_AddItemToArray(lps, cJSON_CreateNumber(lp[i]));
        sum += lp[i];
    }
    cJSON_AddNumberToObject(out, "sum", sum);
    double mean = n > 1 ? -sum / (n - 1) : 0;
    cJSON_AddNumberToObject(out, "mean_nll", mean);
    cJSON_AddNumberToObject(out, "perplexity", exp(mean));
    char *line = cJSON_PrintUnformatted(out);
    printf("%s\n", line);
    free(line);
    cJSON_Delete(out);
    rc = 0;
done:
    free(ids);
    free(targets);
    free(lp);
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
    if (lm_open(&lm, opt.model, opt.tokenizer, &err) != 0) {
        fprintf(stderr, "cutkit score: %s\n", err.msg);
        return 1;
    }
    if (opt.adapter && peft_load(&ad, &lm.model, opt.adapter, &err) != 0) {
        fprintf(stderr, "cutkit score: %s\n", err.msg);
        lm_close(&lm);
        return 1;
    }
    const LoraAdapters *adp = opt.adapter ? &ad : NULL;
    if (opt.text) {
        rc = score_one(&lm, adp, opt.text, &err) == 0 ? 0 : 1;
        if (rc) fprintf(stderr, "cutkit score: %s\n", err.msg);
    } else {
        char *line = NULL;
        size_t cap = 0;
        int line_no = 0;
        while (rc == 0 && getline(&line, &cap, stdin) > 0) {
            line_no++;
            cJSON *rec = cJSON_Parse(line);
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(rec, "text");
            if (!cJSON_IsString(t)) {
                fprintf(stderr,
                        "cutkit score: stdin:%d: expected a JSON object with a \"text\" "
                        "string\n",
                        line_no);
                rc = 1;
            } else if (score_one(&lm, adp, t->valuestring, &err) != 0) {
                fprintf(stderr, "cutkit score: stdin:%d: %s\n", line_no, err.msg);
                rc = 1;
            }
            cJSON_Delete(rec);
        }
        free(line);
    }
    if (opt.adapter) lora_free(&ad);
    lm_close(&lm);
    return rc;
}
