/* cmd_score.c — `cutkit score`: teacher-forced log-probabilities of texts, or of sequences of
 * token ids (so that a model folder without a tokenizer can be scored), per token. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "cli/compute_flag.h"
#include "formats/embedded.h"
#include "formats/hf_model.h"
#include "formats/llama2c.h"
#include "formats/lm.h"
#include "formats/peft.h"
#include "model/matmul.h"
#include "model/score_text.h"
#include "util/json_strict.h"
#include "util/threads.h"

static struct {
    const char *model, *tokenizer, *adapter, *text, *input, *base_dtype, *compute;
    int threads, ids;
} opt;
static WeightDtype held; /* --base-dtype, parsed */

static FlagSpec FLAGS[] = {
    FLAG_MODEL(&opt.model),
    FLAG_TOKENIZER(&opt.tokenizer),
    FLAG_ADAPTER(&opt.adapter),
    {"text", FLAG_STRING, &opt.text, NULL, 0, -1,
     "text to score; without it, JSON lines with a \"text\" (or \"ids\") field are read"},
    {"input", FLAG_STRING, &opt.input, NULL, 0, -1, "JSON lines file to read instead of stdin"},
    {"ids", FLAG_BOOL, &opt.ids, NULL, 0, -1,
     "the lines hold {\"ids\": [token ids]} scored as given (no BOS added); no tokenizer is "
     "opened, so a model folder without one can be scored"},
    FLAG_BASE_DTYPE(&opt.base_dtype),
    FLAG_THREADS(&opt.threads),
    FLAG_COMPUTE(&opt.compute),
};

static const CommandSpec SPEC = {
    "score",
    "teacher-forced log-probabilities of texts, token by token",
    "[--text TEXT | [--ids] [--input FILE | < lines.jsonl]] [--model PATH] [--adapter DIR]",
    "Prints one JSON line per text: tokens (BOS first), logprobs (log p of each token after\n"
    "the first, given the ones before), sum, mean_nll and perplexity. A line {\"ids\": [...]}\n"
    "is scored as the ids given (BOS included only if given) and printed alike; with --ids\n"
    "every line must be one, and the model is opened without a tokenizer.",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0],
};

const CommandSpec *cmd_score_spec(void) {
    return &SPEC;
}

/* Prints the JSON line of one score. */
static void print_score(const TextScore *s) {
    cJSON *out = cJSON_CreateObject();
    cJSON *toks = cJSON_AddArrayToObject(out, "tokens");
    cJSON *lps = cJSON_AddArrayToObject(out, "logprobs");
    for (int i = 0; i < s->n; i++) cJSON_AddItemToArray(toks, cJSON_CreateNumber(s->ids[i]));
    for (int i = 0; i + 1 < s->n; i++)
        cJSON_AddItemToArray(lps, cJSON_CreateNumber(s->logprobs[i]));
    cJSON_AddNumberToObject(out, "sum", s->sum);
    cJSON_AddNumberToObject(out, "mean_nll", s->mean_nll);
    cJSON_AddNumberToObject(out, "perplexity", s->perplexity);
    /* a model held in 16 or 8 bits, or bf16 products, say so (fp32 lines stay as they were) */
    if (held != WEIGHT_F32) cJSON_AddStringToObject(out, "base_dtype", model_held_name(held));
    if (matmul_get_compute() != MATMUL_FP32)
        cJSON_AddStringToObject(out, "compute", matmul_compute_name());
    char *line = cJSON_PrintUnformatted(out);
    printf("%s\n", line);
    free(line);
    cJSON_Delete(out);
}

/* Scores one text and prints its JSON line. */
static int score_one(const LanguageModel *lm, const LoraAdapters *ad, const char *text,
                     CkError *err) {
    TextScore s;
    if (score_text(&lm->model, &lm->tokenizer, ad, text, &s, err) != 0) return -1;
    print_score(&s);
    score_text_free(&s);
    return 0;
}

/* Reads the "ids" array of a line into *ids (malloc'd): integers that fit an int, else an
 * error naming the element. */
static int parse_ids(const cJSON *arr, int **ids, int *n, CkError *err) {
    *ids = NULL;
    *n = 0;
    if (!cJSON_IsArray(arr)) return ck_fail(err, "expected an array of token ids");
    int count = cJSON_GetArraySize(arr);
    *ids = malloc(sizeof(int) * (size_t)(count > 0 ? count : 1));
    if (!*ids) return ck_fail(err, "out of memory");
    const cJSON *x;
    cJSON_ArrayForEach(x, arr) {
        double v = cJSON_IsNumber(x) ? x->valuedouble : NAN;
        if (!(v >= 0 && v <= 2147483647.0 && v == floor(v))) {
            char *shown = cJSON_PrintUnformatted(x);
            ck_fail(err, "element %d: expected a non-negative integer token id, got %.40s", *n,
                    shown ? shown : "?");
            free(shown);
            free(*ids);
            *ids = NULL;
            *n = 0;
            return -1;
        }
        (*ids)[(*n)++] = (int)v;
    }
    return 0;
}

/* Scores the ids of one line and prints its JSON line; errors name the field. */
static int score_ids_line(const LanguageModel *lm, const LoraAdapters *ad, const cJSON *arr,
                          CkError *err) {
    int *ids, n;
    TextScore s;
    int rc = parse_ids(arr, &ids, &n, err) == 0 ? score_ids(&lm->model, ad, ids, n, &s, err) : -1;
    free(ids);
    if (rc != 0) return ck_wrap(err, "field \"ids\"");
    print_score(&s);
    score_text_free(&s);
    return 0;
}

/* Scores one JSON line: its "ids", or (unless --ids) its "text". */
static int score_line(const LanguageModel *lm, const LoraAdapters *ad, const char *line, size_t len,
                      CkError *err) {
    JsonStrictError where;
    cJSON *rec = json_parse_exact(line, len, &where);
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(rec, "ids");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(rec, "text");
    int rc;
    if (!rec && where.after_value)
        rc = ck_fail(err, "content after the JSON value at column %zu", where.offset + 1);
    else if (ids)
        rc = score_ids_line(lm, ad, ids, err);
    else if (opt.ids)
        rc = ck_fail(err, "expected a JSON object with an \"ids\" array");
    else if (!cJSON_IsString(text))
        rc = ck_fail(err, "expected a JSON object with a \"text\" string (or an \"ids\" array)");
    else
        rc = score_one(lm, ad, text->valuestring, err);
    cJSON_Delete(rec);
    return rc;
}

/* Scores every JSON line of --input (or stdin); stops at the first bad line. */
static int score_lines(const LanguageModel *lm, const LoraAdapters *ad) {
    const char *name = opt.input ? opt.input : "stdin";
    FILE *in = opt.input ? fopen(opt.input, "rb") : stdin;
    if (!in) return cli_error(&SPEC, 1, "cannot open %s: %s", opt.input, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    int line_no = 0, rc = 0;
    CkError err = {{0}};
    ssize_t len;
    while (rc == 0 && (len = getline(&line, &cap, in)) > 0) {
        line_no++;
        if (score_line(lm, ad, line, (size_t)len, &err) != 0)
            rc = cli_error(&SPEC, 1, "%s:%d: %s", name, line_no, err.msg);
    }
    free(line);
    if (opt.input) fclose(in);
    return rc;
}

/* The model alone (for --ids): what lm_open opens, without looking for a tokenizer.
 * (formats/lm.h could offer this as lm_open_model.) */
static int open_model_only(LanguageModel *lm, CkError *err) {
    memset(lm, 0, sizeof *lm);
    struct stat st;
    int rc;
    const int is_dir = opt.model && stat(opt.model, &st) == 0 && S_ISDIR(st.st_mode);
    if (!is_dir && held != WEIGHT_F32)
        return ck_fail(err, "--base-dtype %s needs a Hugging Face folder", opt.base_dtype);
    if (!opt.model) {
        rc = embedded_model_load(&lm->model, err);
    } else if (is_dir) {
        HfConfig cfg;
        rc = hf_model_load_held(&lm->model, &cfg, opt.model, held, err);
    } else {
        rc = llama2c_load_file(&lm->model, opt.model, err);
    }
    if (rc != 0) model_free(&lm->model); /* as lm_open does on failure */
    return rc;
}

int cmd_score(int argc, char **argv) {
    char *positional[1];
    int n_positional;
    int rc = flags_parse(&SPEC, argc, argv, positional, 0, &n_positional);
    if (rc != 0) return rc;
    if (opt.text && (opt.ids || opt.input))
        return cli_error(&SPEC, 2,
                         "--text scores one text: it goes with neither --ids nor --input");
    threads_set(opt.threads);
    if ((rc = cli_apply_compute(&SPEC, opt.compute)) != 0) return rc;
    LanguageModel lm;
    LoraAdapters ad;
    CkError err = {{0}};
    if ((rc = cli_apply_base_dtype(&SPEC, opt.base_dtype, &held)) != 0) return rc;
    if (opt.ids ? open_model_only(&lm, &err)
                : lm_open_held(&lm, opt.model, opt.tokenizer, held, &err))
        return cli_fail(&SPEC, 1, &err); /* (both release what they opened) */
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
