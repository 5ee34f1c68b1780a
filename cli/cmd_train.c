/* cmd_train.c — `cutkit train`: fine-tune (full or LoRA) or pretrain a model on a corpus.
 * Under mpirun every rank runs this command with the same flags (data parallelism, see
 * train/dist.h): rank 0 prints and writes, and a rank that fails ends them all. */
#include <cjson/cJSON.h>

#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "datasets/corpus.h"
#include "train/dist.h"
#include "util/fileio.h"
#include "formats/hf_model.h"
#include "datasets/judgments.h"
#include "formats/lm.h"
#include "util/threads.h"
#include "train/trainer.h"

static struct {
    const char *model, *tokenizer, *data, *out, *init, *config, *schedule, *lora_targets;
    const char *objective, *judgments, *judgment_format, *template_path, *preset;
    double lambda, alpha, gamma;
    int cutoff, skip_bad, keep_error;
    int steps, batch_size, micro_batch, seq_len, warmup, save_every, keep, threads, lora, resume;
    int lr_from_first_step, lora_r, stop_after;
    double epochs;
    double lr, weight_decay, beta1, beta2, eps, max_grad_norm;
    float lora_alpha, lora_dropout;
    uint64_t seed;
} opt;

static FlagSpec FLAGS[] = {
    {"data", FLAG_STRING, &opt.data, NULL, 0, -1,
     "training text: .txt (windows), .jsonl with \"text\" or \"prompt\"/\"response\""},
    {"out", FLAG_STRING, &opt.out, NULL, 0, -1, "run directory (created)"},
    {"objective", FLAG_STRING, &opt.objective, "mle", 0, -1,
     "mle (on --data), or cut (on --judgments: Align-P/Align-N MLE + unlikelihood on flagged "
     "Misalign tokens)"},
    {"judgments", FLAG_STRING, &opt.judgments, NULL, 0, -1, "judgment records for --objective cut"},
    {"judgment-format", FLAG_STRING, &opt.judgment_format, "auto", 0, -1,
     "cut (CUT/Alpaca JSON array), shepherd (JSONL) or jsonl (generic); auto: by extension"},
    {"template", FLAG_STRING, &opt.template_path, NULL, 0, -1,
     "prompt templates JSON (prompt_no_input, prompt_no_input_judge, response_split); "
     "default: the reference Alpaca templates"},
    {"preset", FLAG_STRING, &opt.preset, "online", 0, -1,
     "online (lambda 1.1, alpha 1) or offline (lambda 1.2, alpha 0.5), as the reference"},
    {"lambda", FLAG_DOUBLE, &opt.lambda, "0", 0, 1e9,
     "flag a Misalign token when p(y|x,j-)/p(y|x) > lambda (0: the preset's)"},
    {"alpha", FLAG_DOUBLE, &opt.alpha, "-1", -1, 1e9,
     "weight of the unlikelihood terms (-1: the preset's)"},
    {"gamma", FLAG_DOUBLE, &opt.gamma, "0", 0, 100, "v4 dynamic weight pA^gamma (0: the code's)"},
    {"cutoff", FLAG_INT, &opt.cutoff, "0", 0, 1e9,
     "keep the last N tokens of a sequence (0: --seq-len)"},
    {"skip-bad", FLAG_BOOL, &opt.skip_bad, NULL, 0, -1, "skip and count malformed records"},
    {"keep-error", FLAG_BOOL, &opt.keep_error, NULL, 0, -1,
     "keep \"$ERROR$\" judgments as negatives, as the reference does"},
    {"model", FLAG_STRING, &opt.model, NULL, 0, -1,
     "starting model: llama2.c .bin or Hugging Face folder; default: embedded stories260K"},
    {"tokenizer", FLAG_STRING, &opt.tokenizer, NULL, 0, -1, "tokenizer (default: the model's)"},
    {"init", FLAG_STRING, &opt.init, "pretrained", 0, -1,
     "pretrained, or random (a new model shaped by --config)"},
    {"config", FLAG_STRING, &opt.config, NULL, 0, -1, "config.json for --init random"},
    {"steps", FLAG_INT, &opt.steps, "0", 0, 1e9, "optimizer updates (0: from --epochs, else 100)"},
    {"epochs", FLAG_DOUBLE, &opt.epochs, "0", 0, 1e6,
     "passes over the data instead of --steps: ceil(N x sequences (or examples) / "
     "--batch-size) updates; fractions allowed"},
    {"batch-size", FLAG_INT, &opt.batch_size, "8", 1, 1e6, "sequences per update"},
    {"micro-batch", FLAG_INT, &opt.micro_batch, "1", 1, 1e6,
     "sequences per forward/backward (divides --batch-size)"},
    {"seq-len", FLAG_INT, &opt.seq_len, "256", 2, 1e6, "tokens per sequence, BOS included"},
    {"lr", FLAG_DOUBLE, &opt.lr, "4e-4", 0, 10, "peak learning rate"},
    {"schedule", FLAG_STRING, &opt.schedule, "cosine", 0, -1,
     "constant, constant_with_warmup, linear or cosine (Hugging Face's)"},
    {"warmup", FLAG_INT, &opt.warmup, "100", 0, 1e9, "warmup updates"},
    {"lr-from-first-step", FLAG_BOOL, &opt.lr_from_first_step, NULL, 0, -1,
     "start the schedule at lambda(1); default is Hugging Face's order, whose first update "
     "has lr 0 under warmup"},
    {"weight-decay", FLAG_DOUBLE, &opt.weight_decay, "0.01", 0, 10, "AdamW decoupled decay"},
    {"beta1", FLAG_DOUBLE, &opt.beta1, "0.9", 0, 0.999999, "AdamW beta1"},
    {"beta2", FLAG_DOUBLE, &opt.beta2, "0.999", 0, 0.999999, "AdamW beta2"},
    {"eps", FLAG_DOUBLE, &opt.eps, "1e-8", 1e-30, 1, "AdamW epsilon"},
    {"max-grad-norm", FLAG_DOUBLE, &opt.max_grad_norm, "1.0", 0, 1e9,
     "clip the global gradient norm (0: off)"},
    {"lora", FLAG_BOOL, &opt.lora, NULL, 0, -1, "train LoRA adapters on the frozen model"},
    {"lora-r", FLAG_INT, &opt.lora_r, "16", 1, 65536, "LoRA rank"},
    {"lora-alpha", FLAG_FLOAT, &opt.lora_alpha, "16", 1e-6, 1e6, "LoRA alpha (scale alpha/r)"},
    {"lora-dropout", FLAG_FLOAT, &opt.lora_dropout, "0.05", 0, 0.99, "LoRA input dropout"},
    {"lora-targets", FLAG_STRING, &opt.lora_targets, "gate_proj,up_proj,down_proj", 0, -1,
     "modules by Hugging Face name, comma separated, or all"},
    {"save-every", FLAG_INT, &opt.save_every, "0", 0, 1e9, "checkpoint every N updates (0: end)"},
    {"keep", FLAG_INT, &opt.keep, "1", 0, 1e6, "previous checkpoints kept"},
    {"resume", FLAG_BOOL, &opt.resume, NULL, 0, -1,
     "continue from the newest checkpoint in --out (bit for bit on the same thread count)"},
    {"seed", FLAG_U64, &opt.seed, "42", 0, -1, "data order, LoRA init and dropout"},
    {"stop-after", FLAG_INT, &opt.stop_after, "0", 0, 1e9,
     "act as if interrupted after N updates: checkpoint and exit (for testing --resume)"},
    {"threads", FLAG_INT, &opt.threads, "0", 0, 1024, "threads (0: one per core)"},
};

static const CommandSpec SPEC = {
    "train",
    "train a model or LoRA adapters: MLE on a corpus, or CUT on judgments",
    "--data PATH --out DIR [--model PATH | --init random --config JSON] [--lora] ...",
    "Writes DIR/steps.jsonl (one line per update), DIR/checkpoints/checkpoint-N (weights or\n"
    "adapter + train_state.bin, atomically), and DIR/model (Hugging Face folder) or\n"
    "DIR/adapter (PEFT) at the end. SIGINT/SIGTERM finish the current update, save a\n"
    "checkpoint and exit 0; --resume continues from it.\n"
    "Data-parallel under MPI (a build with -DCUTKIT_MPI=ON): `mpirun -np K cutkit train ...`\n"
    "splits every update's micro-batches over K processes (rank k runs micro-batches k,\n"
    "k + K, ...) and sums the gradients, so the run equals the one-process run with the same\n"
    "flags; give each process its share of the cores with --threads or OMP_NUM_THREADS.",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0],
};

const CommandSpec *cmd_train_spec(void) {
    return &SPEC;
}

static volatile sig_atomic_t stop_requested;

/* " on K ranks" under mpirun, else "" (for the opening line). */
static const char *ranks_note(void) {
    static char note[48];
    if (dist_size() == 1) return "";
    snprintf(note, sizeof note, ", data-parallel on %d ranks", dist_size());
    return note;
}

/* A failure after the data is read: one process prints "cutkit train: ..." and returns 1;
 * under mpirun the message goes out with the rank and every rank ends (MPI_Abort), since the
 * others may already wait for this one in a collective. */
static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (dist_size() > 1) {
        char line[1100];
        snprintf(line, sizeof line, "train: %s", msg);
        dist_abort(line);
    }
    fprintf(stderr, "cutkit train: %s\n", msg);
    return 1;
}

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

/* Writes OUT/config.json: the effective settings of the run, which `cutkit report` and the
 * sweep read (a run's label is its folder name). */
static int write_run_config(const char *model_source, const CutOptions *cut_opt, int cut,
                            const TrainOptions *t, const TrainReport *report,
                            const char *command_line, CkError *err) {
    const char *base = strrchr(opt.out, '/');
    base = base && base[1] ? base + 1 : opt.out;
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "label", base);
    cJSON_AddStringToObject(c, "objective", cut ? "cut" : "mle");
    cJSON_AddStringToObject(c, "model", opt.model ? opt.model : model_source);
    cJSON_AddStringToObject(c, cut ? "judgments" : "data", cut ? opt.judgments : opt.data);
    if (cut) {
        cJSON_AddStringToObject(c, "template", opt.template_path ? opt.template_path : "alpaca");
        cJSON_AddNumberToObject(c, "lambda", cut_opt->lambda);
        cJSON_AddNumberToObject(c, "alpha", cut_opt->alpha);
        cJSON_AddNumberToObject(c, "gamma", cut_opt->gamma);
    }
    cJSON_AddNumberToObject(c, "lr", t->lr);
    cJSON_AddStringToObject(c, "schedule", opt.schedule);
    cJSON_AddNumberToObject(c, "warmup", (double)t->warmup_steps);
    cJSON_AddNumberToObject(c, "steps", (double)t->steps);
    cJSON_AddNumberToObject(c, "batch_size", t->batch_size);
    cJSON_AddNumberToObject(c, "micro_batch", t->micro_batch);
    cJSON_AddNumberToObject(c, "seq_len", opt.seq_len);
    cJSON_AddBoolToObject(c, "lora", t->use_lora);
    if (t->use_lora) {
        cJSON_AddNumberToObject(c, "lora_r", t->lora.rank);
        cJSON_AddNumberToObject(c, "lora_alpha", t->lora.alpha);
        cJSON_AddNumberToObject(c, "lora_dropout", t->lora.dropout);
        cJSON_AddStringToObject(c, "lora_targets", opt.lora_targets);
    }
    cJSON_AddNumberToObject(c, "seed", (double)t->seed);
    cJSON_AddNumberToObject(c, "ranks", dist_size());
    cJSON_AddNumberToObject(c, "steps_done", (double)report->steps_done);
    cJSON_AddNumberToObject(c, "final_loss", report->last_loss);
    cJSON_AddStringToObject(c, "cutkit_version", CUTKIT_VERSION);
    cJSON_AddStringToObject(c, "command", command_line);
    char *text = cJSON_Print(c);
    cJSON_Delete(c);
    char path[4200];
    int rc = !text ? ck_fail(err, "out of memory")
             : fileio_path(path, sizeof path, opt.out, "config.json") != 0
                 ? ck_fail(err, "%s: path too long", opt.out)
                 : fileio_write_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}

/* Reads --judgments and builds every record's training item with the templates. */
static int load_examples(const Tokenizer *tok, JudgmentSet *set, CutExample **examples,
                         int *n_examples, CkError *err) {
    JudgmentFormat fmt;
    size_t len = strlen(opt.judgments);
    if (!strcmp(opt.judgment_format, "cut"))
        fmt = JUDGMENTS_CUT_JSON;
    else if (!strcmp(opt.judgment_format, "shepherd"))
        fmt = JUDGMENTS_SHEPHERD;
    else if (!strcmp(opt.judgment_format, "jsonl"))
        fmt = JUDGMENTS_JSONL;
    else if (!strcmp(opt.judgment_format, "auto"))
        fmt = (len > 6 && !strcmp(opt.judgments + len - 6, ".jsonl")) ? JUDGMENTS_JSONL
                                                                      : JUDGMENTS_CUT_JSON;
    else
        return ck_fail(err, "--judgment-format expects cut, shepherd, jsonl or auto, got '%s'",
                       opt.judgment_format);
    JudgmentLoadOptions lo = {opt.skip_bad, opt.keep_error};
    if (judgments_load(set, opt.judgments, fmt, &lo, err) != 0) return -1;
    Template tpl;
    int rc = opt.template_path ? template_load(&tpl, opt.template_path, err)
                               : template_default(&tpl, err);
    if (rc != 0) return -1;
    *examples = calloc((size_t)(set->n > 0 ? set->n : 1), sizeof(CutExample));
    if (!*examples) rc = ck_fail(err, "out of memory");
    const int cutoff = opt.cutoff > 0 ? opt.cutoff : opt.seq_len;
    for (int i = 0; rc == 0 && i < set->n; i++) {
        rc = judgments_build_example(&tpl, &set->records[i], tok, cutoff, &(*examples)[i], err);
        if (rc == 0)
            (*n_examples)++;
        else
            ck_wrap(err, "%s: record %d", opt.judgments, set->records[i].source_index);
    }
    template_free(&tpl);
    return rc;
}

static int run_train(int argc, char **argv) {
    char *positional[1];
    int n_positional;
    int rc = flags_parse(&SPEC, argc, argv, positional, 0, &n_positional);
    if (rc != 0) return rc;
    const int cut = !strcmp(opt.objective, "cut");
    if (!cut && strcmp(opt.objective, "mle") != 0) {
        fprintf(stderr, "cutkit train: --objective expects mle or cut, got '%s'\n", opt.objective);
        return 2;
    }
    if (opt.epochs > 0 && opt.steps > 0) {
        fprintf(stderr, "cutkit train: give --steps or --epochs, not both\n");
        return 2;
    }
    if ((!cut && !opt.data) || (cut && !opt.judgments) || !opt.out) {
        fprintf(stderr, cut ? "cutkit train: --judgments and --out are required\n"
                            : "cutkit train: --data and --out are required\n");
        return 2;
    }
    CutOptions cut_opt = cut_default_options();
    if (!strcmp(opt.preset, "offline")) {
        cut_opt.lambda = 1.2;
        cut_opt.alpha = 0.5;
    } else if (strcmp(opt.preset, "online") != 0) {
        fprintf(stderr, "cutkit train: --preset expects online or offline, got '%s'\n", opt.preset);
        return 2;
    }
    if (opt.lambda > 0) cut_opt.lambda = opt.lambda;
    if (opt.alpha >= 0) cut_opt.alpha = opt.alpha;
    cut_opt.gamma = opt.gamma;
    TrainOptions t = {0};
    CkError err = {{0}};
    if (schedule_parse_kind(opt.schedule, &t.schedule, &err) != 0) {
        fprintf(stderr, "cutkit train: --schedule: %s\n", err.msg);
        return 2;
    }
    if (opt.lora && lora_parse_targets(opt.lora_targets, &t.lora.target_mask, &err) != 0) {
        fprintf(stderr, "cutkit train: --lora-targets: %s\n", err.msg);
        return 2;
    }
    int random_init = !strcmp(opt.init, "random");
    if (!random_init && strcmp(opt.init, "pretrained") != 0) {
        fprintf(stderr, "cutkit train: --init expects pretrained or random, got '%s'\n", opt.init);
        return 2;
    }
    if (random_init && !opt.config) {
        fprintf(stderr, "cutkit train: --init random needs --config config.json\n");
        return 2;
    }
    threads_set(opt.threads);
    LanguageModel lm;
    HfConfig cfg = {.bos_token_id = 1, .eos_token_id = 2};
    if (lm_open(&lm, random_init ? NULL : opt.model, opt.tokenizer, &err) != 0)
        return fail("%s", err.msg);
    if (random_init) {
        /* a new model of the config's shape, with the tokenizer of --tokenizer (or embedded) */
        Model fresh;
        if (hf_config_load(&cfg, opt.config, &err) != 0 ||
            (cfg.model.rope_style = ROPE_INTERLEAVED, model_init(&fresh, &cfg.model, &err)) != 0) {
            lm_close(&lm);
            return fail("%s", err.msg);
        }
        if (fresh.config.vocab_size != lm.tokenizer.vocab_size) {
            int model_vocab = fresh.config.vocab_size, tok_vocab = lm.tokenizer.vocab_size;
            model_free(&fresh);
            lm_close(&lm);
            return fail("vocab mismatch: --config has vocab_size %d, the tokenizer %d", model_vocab,
                        tok_vocab);
        }
        trainer_init_random(&fresh, opt.seed);
        model_free(&lm.model);
        lm.model = fresh;
    }
    cfg.model = lm.model.config;
    Corpus corpus = {0};
    JudgmentSet set = {0};
    CutExample *examples = NULL;
    int n_examples = 0;
    if (cut) {
        rc = load_examples(&lm.tokenizer, &set, &examples, &n_examples, &err);
    } else {
        rc = corpus_load(&corpus, opt.data, &lm.tokenizer, opt.seq_len, &err);
    }
    if (rc != 0) {
        corpus_free(&corpus);
        for (int i = 0; i < n_examples; i++) judgments_example_free(&examples[i]);
        free(examples);
        judgments_free(&set);
        lm_close(&lm);
        return fail("%s", err.msg);
    }
    TrainData data = {cut ? NULL : &corpus, examples, n_examples};
    char command_line[2048] = "cutkit train";
    for (int i = 0; i < argc; i++)
        snprintf(command_line + strlen(command_line), sizeof command_line - strlen(command_line),
                 " %s", argv[i]);
    const int n_items = cut ? n_examples : corpus.n_seqs;
    t.steps = opt.steps > 0 ? opt.steps : 100;
    /* an epoch is one pass of the shuffled cursor over every sequence (or example); the last
     * update may reach into the next pass, as batches never stop short at an epoch's end */
    if (opt.epochs > 0) t.steps = (int64_t)ceil(opt.epochs * n_items / opt.batch_size - 1e-9);
    if (t.steps < 1) t.steps = 1;
    t.batch_size = opt.batch_size;
    t.micro_batch = opt.micro_batch;
    t.lr = opt.lr;
    t.warmup_steps = opt.warmup;
    t.first_step_lr_zero = !opt.lr_from_first_step;
    t.adamw = (AdamWConfig){opt.beta1, opt.beta2, opt.eps, opt.weight_decay};
    t.max_grad_norm = opt.max_grad_norm;
    t.use_lora = opt.lora;
    t.lora.rank = opt.lora_r;
    t.lora.alpha = opt.lora_alpha;
    t.lora.dropout = opt.lora_dropout;
    t.seed = opt.seed;
    t.out_dir = opt.out;
    t.save_every = opt.save_every;
    t.keep_checkpoints = opt.keep;
    t.resume = opt.resume;
    t.base_name = opt.model ? opt.model : lm.model_source;
    t.command_line = command_line;
    t.stop = &stop_requested;
    t.stop_after = opt.stop_after;
    t.cut = cut_opt;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    char epochs_note[64] = "";
    if (opt.epochs > 0)
        snprintf(epochs_note, sizeof epochs_note, " (%g epochs of %d)", opt.epochs, n_items);
    if (dist_rank() == 0 && cut) /* rank 0 speaks for the run */
        fprintf(stderr,
                "training %s with CUT on %s: %d examples (%d positive, %d negative, %d $ERROR$ "
                "dropped, %d skipped), lambda %g, alpha %g; %lld updates of %d%s%s\n",
                lm.model_source, opt.judgments, n_examples, set.n_positive, set.n_negative,
                opt.keep_error ? 0 : set.n_error, set.n_skipped, cut_opt.lambda, cut_opt.alpha,
                (long long)t.steps, t.batch_size, epochs_note, ranks_note());
    else if (dist_rank() == 0)
        fprintf(stderr, "training %s on %s: %d sequences, %lld updates of %d%s%s\n",
                lm.model_source, opt.data, corpus.n_seqs, (long long)t.steps, t.batch_size,
                epochs_note, ranks_note());
    TrainReport report;
    char model_source[512];
    snprintf(model_source, sizeof model_source, "%s", lm.model_source);
    rc = trainer_run(&lm.model, &cfg, &data, &t, &report, &err);
    corpus_free(&corpus);
    for (int i = 0; i < n_examples; i++) judgments_example_free(&examples[i]);
    free(examples);
    judgments_free(&set);
    lm_close(&lm);
    if (rc == 0 && dist_rank() == 0)
        rc = write_run_config(model_source, &cut_opt, cut, &t, &report, command_line, &err);
    if (rc != 0) return fail("%s", err.msg);
    if (dist_rank() != 0) return 0;
    if (report.stopped_early)
        fprintf(stderr,
                "cutkit train: stopped at step %lld; checkpoint saved in %s (continue "
                "with --resume)\n",
                (long long)report.steps_done, report.saved);
    else
        fprintf(stderr, "cutkit train: done, %lld updates, final loss %.4f; wrote %s\n",
                (long long)report.steps_done, report.last_loss, report.saved);
    return 0;
}

int cmd_train(int argc, char **argv) {
    CkError err = {{0}};
    if (dist_init(&argc, &argv, &err) != 0) {
        fprintf(stderr, "cutkit train: %s\n", err.msg);
        return 1;
    }
    int rc = run_train(argc, argv);
    /* every rank gets here unless one aborted (which ends them all) */
    dist_finalize();
    return rc;
}
