/* cmd_train.c — `cutkit train`: fine-tune (full or LoRA) or pretrain a model on a corpus. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "corpus.h"
#include "hf_model.h"
#include "lm.h"
#include "threads.h"
#include "trainer.h"

static struct {
    const char *model, *tokenizer, *data, *out, *init, *config, *schedule, *lora_targets;
    int steps, batch_size, micro_batch, seq_len, warmup, save_every, keep, threads, lora, resume;
    int lr_from_first_step, lora_r, stop_after;
    double lr, weight_decay, beta1, beta2, eps, max_grad_norm;
    float lora_alpha, lora_dropout;
    uint64_t seed;
} opt;

static FlagSpec FLAGS[] = {
    {"data", FLAG_STRING, &opt.data, NULL, 0, -1,
     "training text: .txt (windows), .jsonl with \"text\" or \"prompt\"/\"response\""},
    {"out", FLAG_STRING, &opt.out, NULL, 0, -1, "run directory (created)"},
    {"model", FLAG_STRING, &opt.model, NULL, 0, -1,
     "starting model: llama2.c .bin or Hugging Face folder; default: embedded stories260K"},
    {"tokenizer", FLAG_STRING, &opt.tokenizer, NULL, 0, -1, "tokenizer (default: the model's)"},
    {"init", FLAG_STRING, &opt.init, "pretrained", 0, -1,
     "pretrained, or random (a new model shaped by --config)"},
    {"config", FLAG_STRING, &opt.config, NULL, 0, -1, "config.json for --init random"},
    {"steps", FLAG_INT, &opt.steps, "100", 1, 1e9, "optimizer updates"},
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
    "train a model or LoRA adapters on a text/JSONL corpus (MLE)",
    "--data PATH --out DIR [--model PATH | --init random --config JSON] [--lora] ...",
    "Writes DIR/steps.jsonl (one line per update), DIR/checkpoints/checkpoint-N (weights or\n"
    "adapter + train_state.bin, atomically), and DIR/model (Hugging Face folder) or\n"
    "DIR/adapter (PEFT) at the end. SIGINT/SIGTERM finish the current update, save a\n"
    "checkpoint and exit 0; --resume continues from it.",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0],
};

const CommandSpec *cmd_train_spec(void) {
    return &SPEC;
}

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

int cmd_train(int argc, char **argv) {
    char *positional[1];
    int n_positional;
    int rc = flags_parse(&SPEC, argc, argv, positional, 0, &n_positional);
    if (rc != 0) return rc;
    if (!opt.data || !opt.out) {
        fprintf(stderr, "cutkit train: --data and --out are required\n");
        return 2;
    }
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
    if (lm_open(&lm, random_init ? NULL : opt.model, opt.tokenizer, &err) != 0) {
        fprintf(stderr, "cutkit train: %s\n", err.msg);
        return 1;
    }
    if (random_init) {
        /* a new model of the config's shape, with the tokenizer of --tokenizer (or embedded) */
        Model fresh;
        if (hf_config_load(&cfg, opt.config, &err) != 0 ||
            (cfg.model.rope_style = ROPE_INTERLEAVED, model_init(&fresh, &cfg.model, &err)) != 0) {
            fprintf(stderr, "cutkit train: %s\n", err.msg);
            lm_close(&lm);
            return 1;
        }
        if (fresh.config.vocab_size != lm.tokenizer.vocab_size) {
            fprintf(stderr,
                    "cutkit train: vocab mismatch: --config has vocab_size %d, the "
                    "tokenizer %d\n",
                    fresh.config.vocab_size, lm.tokenizer.vocab_size);
            model_free(&fresh);
            lm_close(&lm);
            return 1;
        }
        trainer_init_random(&fresh, opt.seed);
        model_free(&lm.model);
        lm.model = fresh;
    }
    cfg.model = lm.model.config;
    Corpus corpus;
    if (corpus_load(&corpus, opt.data, &lm.tokenizer, opt.seq_len, &err) != 0) {
        fprintf(stderr, "cutkit train: %s\n", err.msg);
        lm_close(&lm);
        return 1;
    }
    char command_line[2048] = "cutkit train";
    for (int i = 0; i < argc; i++)
        snprintf(command_line + strlen(command_line), sizeof command_line - strlen(command_line),
                 " %s", argv[i]);
    t.steps = opt.steps;
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
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    fprintf(stderr, "training %s on %s: %d sequences, %lld updates of %d\n", lm.model_source,
            opt.data, corpus.n_seqs, (long long)t.steps, t.batch_size);
    TrainReport report;
    rc = trainer_run(&lm.model, &cfg, &corpus, &t, &report, &err);
    corpus_free(&corpus);
    lm_close(&lm);
    if (rc != 0) {
        fprintf(stderr, "cutkit train: %s\n", err.msg);
        return 1;
    }
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
