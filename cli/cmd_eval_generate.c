/* cmd_eval_generate.c — `cutkit eval generate`: answer a list of instructions with a model
 * and write AlpacaEval's model_outputs.json, resumably. Under mpirun the instructions are
 * sharded over the ranks (cli/shard.h; record i's sample depends only on --seed and i) and
 * rank 0, which alone reads and writes --out, gathers the responses in order, so the file
 * equals the one-process run's byte for byte. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "train/dist.h"
#include "formats/lm.h"
#include "eval/outputs.h"
#include "formats/peft.h"
#include "eval/respond.h"
#include "eval/results.h"
#include "cli/shard.h"
#include "datasets/templates.h"
#include "util/threads.h"
#include "util/timer.h"

static struct {
    const char *instructions, *out, *model, *tokenizer, *adapter, *template_path, *generator;
    const char *stop;
    int max_tokens, limit, save_every, threads;
    float temperature, top_p;
    uint64_t seed;
} opt;

static FlagSpec FLAGS[] = {
    {"instructions", FLAG_STRING, &opt.instructions, NULL, 0, -1,
     "JSON array of instructions: a model_outputs.json (e.g. shared/data/alpaca_eval/results/"
     "gpt4_1106_preview/model_outputs.json holds the 805 AlpacaEval ones), objects with "
     "\"instruction\" (+ optional \"input\", \"dataset\"), or strings"},
    {"out", FLAG_STRING, &opt.out, NULL, 0, -1,
     "model_outputs.json to write; if it exists, generation resumes after its records"},
    {"model", FLAG_STRING, &opt.model, NULL, 0, -1,
     "llama2.c .bin or Hugging Face folder; default: embedded stories260K"},
    {"tokenizer", FLAG_STRING, &opt.tokenizer, NULL, 0, -1, "tokenizer (default: the model's)"},
    {"adapter", FLAG_STRING, &opt.adapter, NULL, 0, -1,
     "PEFT LoRA adapter folder, merged into the model before generating"},
    {"template", FLAG_STRING, &opt.template_path, NULL, 0, -1,
     "prompt template JSON of the CUT shape (its prompt_no_input is used); default: the "
     "Alpaca template"},
    {"generator", FLAG_STRING, &opt.generator, NULL, 0, -1,
     "the \"generator\" name written (default: the model's file or folder name)"},
    {"max-tokens", FLAG_INT, &opt.max_tokens, "256", 1, 1000000, "tokens per response at most"},
    {"temperature", FLAG_FLOAT, &opt.temperature, "0", 0, 100, "0 is greedy"},
    {"top-p", FLAG_FLOAT, &opt.top_p, "0.9", 1e-6, 1, "nucleus sampling mass"},
    {"seed", FLAG_U64, &opt.seed, "42", 0, -1,
     "sampling seed; record i samples with a seed mixed from (seed, i)"},
    {"stop", FLAG_STRING, &opt.stop, NULL, 0, -1,
     "stop string, or a JSON array of them (e.g. '[\"\\n\\n###\"]'); cut from the output"},
    {"limit", FLAG_INT, &opt.limit, "0", 0, 1e9, "answer only the first N instructions (0: all)"},
    {"save-every", FLAG_INT, &opt.save_every, "10", 1, 1e9,
     "rewrite the output file (atomically) every N responses"},
    {"threads", FLAG_INT, &opt.threads, "0", 0, 1024, "threads (0: one per core)"},
};

static const CommandSpec SPEC = {
    "eval generate",
    "generate responses in AlpacaEval model_outputs.json format",
    "--instructions FILE --out model_outputs.json [--model PATH] [--adapter DIR] [--max-tokens N]",
    "Formats each instruction with the template, generates (greedy at --temperature 0, else\n"
    "seeded top-p sampling), stops at EOS or a --stop string, trims whitespace and writes\n"
    "{instruction, output, generator, dataset} records. Rerunning with the same --out resumes\n"
    "after the records already there (they must be the first instructions, in order); record i's\n"
    "sample depends only on --seed and i, so a resumed run equals an uninterrupted one.\n"
    "Sharded under MPI: `mpirun -np K cutkit eval generate ...` splits the instructions over\n"
    "K processes; rank 0 gathers the responses and writes the same file.",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0],
};

const CommandSpec *cmd_eval_generate_spec(void) {
    return &SPEC;
}

/* The stop strings: one string, or a JSON array of strings. */
static int parse_stops(const char *arg, char ***stops, int *n, CkError *err) {
    *stops = NULL;
    *n = 0;
    if (!arg) return 0;
    if (arg[0] != '[') {
        *stops = malloc(sizeof(char *));
        if (!*stops || !((*stops)[0] = strdup(arg))) return ck_fail(err, "out of memory");
        *n = 1;
        return 0;
    }
    cJSON *a = cJSON_Parse(arg);
    int count = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : -1;
    const cJSON *s;
    cJSON_ArrayForEach(s, a) if (!cJSON_IsString(s)) count = -1;
    if (count < 0) {
        cJSON_Delete(a);
        return ck_fail(err, "--stop: expected a string or a JSON array of strings");
    }
    *stops = calloc((size_t)count + 1, sizeof(char *));
    int rc = *stops ? 0 : ck_fail(err, "out of memory");
    cJSON_ArrayForEach(s, a) {
        if (rc == 0 && !((*stops)[*n] = strdup(s->valuestring))) rc = ck_fail(err, "out of memory");
        if (rc == 0) (*n)++;
    }
    cJSON_Delete(a);
    return rc;
}

/* The default generator name: the model's file or folder name without extension. */
static void default_generator(const char *model, char *buf, size_t cap) {
    if (!model) {
        snprintf(buf, cap, "stories260K");
        return;
    }
    size_t len = strlen(model);
    while (len > 1 && model[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && model[start - 1] != '/') start--;
    size_t end = len;
    for (size_t i = start; i < len; i++)
        if (model[i] == '.' && i > start) end = i;
    snprintf(buf, cap, "%.*s", (int)(end - start), model + start);
}

/* Every rank must answer the same instructions as the same generator: a hash of them agrees
 * across ranks, else the gathered file would mix two runs. */
static int check_same_run(const ModelOutputs *list, int n, const char *generator, CkError *err) {
    if (dist_size() == 1) return 0;
    uint64_t h = results_hash(RESULTS_HASH_INIT, &n, sizeof n);
    h = results_hash_str(h, generator);
    for (int i = 0; i < n; i++) h = results_hash_str(h, list->items[i].instruction);
    int same = 0;
    if (dist_same_u64(h, &same, err) != 0) return -1;
    if (!same)
        return ck_fail(err,
                       "the ranks read different instructions or generators (%d here): give "
                       "every rank the same flags and files",
                       n);
    return 0;
}

static int run_eval_generate(int argc, char **argv) {
    char *positional[1];
    int n_positional;
    int rc = flags_parse(&SPEC, argc, argv, positional, 0, &n_positional);
    if (rc != 0) return rc;
    if (!opt.instructions || !opt.out) {
        fprintf(stderr, "cutkit eval generate: --instructions and --out are required\n");
        return 2;
    }
    CkError err = {{0}};
    char **stops = NULL;
    int n_stops = 0;
    if (parse_stops(opt.stop, &stops, &n_stops, &err) != 0) {
        fprintf(stderr, "cutkit eval generate: %s\n", err.msg);
        return 2;
    }
    threads_set(opt.threads);
    char generator[256];
    if (opt.generator)
        snprintf(generator, sizeof generator, "%s", opt.generator);
    else
        default_generator(opt.model, generator, sizeof generator);
    ModelOutputs list = {0}, done = {0};
    Template tpl = {0};
    LanguageModel lm;
    int lm_open_ok = 0, since_save = 0;
    ShardBuf mine = {0};
    char *gathered = NULL;
    const int root = dist_rank() == 0;
    rc = 1;
    if (outputs_load(&list, opt.instructions, 0, &err) != 0) goto fail;
    int n = list.n;
    if (opt.limit > 0 && opt.limit < n) n = opt.limit;
    if (check_same_run(&list, n, generator, &err) != 0) goto fail;
    struct stat st;
    /* --out is rank 0's alone; the other ranks learn where it stops */
    if (root && stat(opt.out, &st) == 0) {
        if (outputs_load(&done, opt.out, 1, &err) != 0) goto fail;
        if (done.n > n) {
            ck_fail(&err, "%s holds %d records, more than the %d instructions to answer", opt.out,
                    done.n, n);
            goto fail;
        }
        for (int i = 0; i < done.n; i++) {
            if (strcmp(done.items[i].instruction, list.items[i].instruction) != 0) {
                ck_fail(&err,
                        "%s: record %d is not instruction %d of %s: not a partial run of "
                        "these instructions (choose another --out)",
                        opt.out, i, i, opt.instructions);
                goto fail;
            }
            if (!done.items[i].generator || strcmp(done.items[i].generator, generator) != 0) {
                ck_fail(&err, "%s: record %d was made by generator '%s', not '%s'", opt.out, i,
                        done.items[i].generator ? done.items[i].generator : "(none)", generator);
                goto fail;
            }
        }
        if (done.n > 0)
            fprintf(stderr, "resuming after %d of %d responses in %s\n", done.n, n, opt.out);
    }
    int start = done.n;
    if (dist_bcast_bytes(&start, sizeof start, 0, &err) != 0) goto fail;
    if (opt.template_path ? template_load(&tpl, opt.template_path, &err)
                          : template_default(&tpl, &err))
        goto fail;
    if (start < n || start == 0) {
        if (lm_open(&lm, opt.model, opt.tokenizer, &err) != 0) goto fail;
        lm_open_ok = 1;
        if (opt.adapter) {
            LoraAdapters ad;
            if (peft_load(&ad, &lm.model, opt.adapter, &err) != 0) goto fail;
            int merged = lora_merge(&lm.model, &ad, &err);
            lora_free(&ad);
            if (merged != 0) goto fail;
        }
    }
    double t0 = timer_seconds();
    long tokens = 0;
    /* rounds of about --save-every records: each rank answers its contiguous share, rank 0
     * gathers the round and appends it in order */
    const int64_t round = shard_round_size((opt.save_every + dist_size() - 1) / dist_size());
    for (int64_t a = start; a < n; a += round) {
        int64_t b = a + round < n ? a + round : n, lo, hi;
        shard_round_share(a, b, &lo, &hi);
        shard_buf_reset(&mine);
        for (int i = (int)lo; i < (int)hi; i++) {
            const ModelOutput *in = &list.items[i];
            char *prompt = template_format(tpl.prompt_no_input, in->instruction, NULL, &err);
            if (!prompt) {
                ck_wrap(&err, "instruction %d", i);
                goto fail;
            }
            RespondOptions ro = {opt.max_tokens,
                                 opt.temperature,
                                 opt.top_p,
                                 respond_record_seed(opt.seed, i),
                                 (const char *const *)stops,
                                 n_stops};
            char *text = NULL;
            int n_tokens = 0;
            int g = respond_generate(&lm.model, &lm.tokenizer, prompt, &ro, &text, &n_tokens, &err);
            free(prompt);
            if (g != 0) {
                ck_wrap(&err, "%s: instruction %d", opt.instructions, i);
                goto fail_save;
            }
            if (dist_size() == 1) {
                tokens += n_tokens;
                g = outputs_append(&done, in->instruction, text, generator, in->dataset, &err);
            } else {
                g = shard_put_int(&mine, n_tokens, &err) || shard_put_str(&mine, text, &err) ? -1
                                                                                             : 0;
            }
            free(text);
            if (g != 0) goto fail_save;
        }
        if (dist_size() > 1) {
            size_t n_gathered = 0;
            free(gathered);
            gathered = NULL;
            if (shard_gather(&mine, &gathered, &n_gathered, &err) != 0) goto fail_save;
            if (!root) continue;
            ShardReader rd = {gathered, n_gathered, 0};
            for (int64_t i = a; i < b; i++) {
                int n_tokens = 0;
                char *text = NULL;
                const ModelOutput *in = &list.items[i];
                int g = shard_get_int(&rd, &n_tokens, &err) || shard_get_str(&rd, &text, &err) ||
                                outputs_append(&done, in->instruction, text ? text : "", generator,
                                               in->dataset, &err)
                            ? -1
                            : 0;
                free(text);
                if (g != 0) goto fail_save;
                tokens += n_tokens;
            }
        }
        since_save += (int)(b - a);
        if (since_save >= opt.save_every || b == n) {
            if (outputs_save(&done, opt.out, &err) != 0) goto fail;
            since_save = 0;
            double s = timer_seconds() - t0;
            fprintf(stderr, "%d/%d responses, %ld tokens, %.1f tokens/s\n", (int)b, n, tokens,
                    s > 0 ? tokens / s : 0.0);
        }
    }
    if (root) {
        if (done.n == 0 && outputs_save(&done, opt.out, &err) != 0) goto fail;
        fprintf(stderr, "%s: %d responses by %s\n", opt.out, done.n, generator);
    }
    rc = 0;
    goto cleanup;
fail_save:
    /* keep what was generated (rank 0: what was gathered), so that a rerun resumes after it */
    if (root && since_save > 0) {
        CkError save_err = {{0}};
        if (outputs_save(&done, opt.out, &save_err) != 0)
            fprintf(stderr, "cutkit eval generate: %s\n", save_err.msg);
    }
fail:
    shard_fail("eval generate", err.msg);
cleanup:
    shard_buf_free(&mine);
    free(gathered);
    if (lm_open_ok) lm_close(&lm);
    template_free(&tpl);
    outputs_free(&list);
    outputs_free(&done);
    for (int i = 0; i < n_stops; i++) free(stops[i]);
    free(stops);
    return rc;
}

int cmd_eval_generate(int argc, char **argv) {
    CkError err = {{0}};
    if (dist_init(&argc, &argv, &err) != 0) {
        fprintf(stderr, "cutkit eval generate: %s\n", err.msg);
        return 1;
    }
    int rc = run_eval_generate(argc, argv);
    /* every rank gets here unless one aborted (which ends them all) */
    dist_finalize();
    return rc;
}
