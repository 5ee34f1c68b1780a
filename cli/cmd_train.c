/* cmd_train.c — `cutkit train`: fine-tune (full or LoRA) or pretrain a model on a corpus, or
 * CUT-train it on judgments: flags into TrainRunOptions, then train_run (train/train_run.h).
 * Under mpirun every rank runs this command with the same flags (data parallelism, see
 * train/dist.h): rank 0 prints and writes, and a rank that fails ends them all. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/compute_flag.h"
#include "cli/preset_flags.h"
#include "train/dist.h"
#include "train/presets.h"
#include "train/train_run.h"
#include "formats/lm.h"

static struct {
    const char *model, *tokenizer, *data, *out, *init, *config, *schedule, *lora_targets;
    const char *objective, *judgments, *judgment_format, *template_path, *preset, *align_p_ratio;
    double lambda, alpha, gamma;
    int cutoff, skip_bad, keep_error;
    uint64_t align_p_seed;
    int steps, batch_size, micro_batch, seq_len, warmup, save_every, keep, threads, lora, resume;
    int lr_from_first_step, lora_r, stop_after;
    int no_l1, no_align_p, no_align_n_mle, no_detection, no_dynamic_weight;
    double dpo_beta;
    const char *ref_model, *chosen_field, *compute, *base_dtype;
    double epochs;
    double lr, weight_decay, beta1, beta2, eps, max_grad_norm;
    float lora_alpha, lora_dropout;
    uint64_t seed;
} opt;

static FlagSpec FLAGS[] = {
    {"data", FLAG_STRING, &opt.data, NULL, 0, -1,
     "mle: training text: .txt (windows), .jsonl with \"text\" or \"prompt\"/\"response\"; "
     "dpo: a pair file (JSONL {prompt|instruction[,input], chosen, rejected}, or "
     "UltraFeedback-style message lists); ilf-mle, ilf-dpo: a refinement file (cutkit refine)"},
    FLAG_OUT_REQUIRED(&opt.out, "run directory (created)"),
    {"objective", FLAG_STRING, &opt.objective, "mle", 0, -1,
     "mle (on --data); cut (on --judgments: Align-P/Align-N MLE + unlikelihood on flagged "
     "Misalign tokens); the paper's baselines (train/OBJECTIVES.md): forward-prediction "
     "(MLE on response + judgment) and hindsight (MLE on the response given the judgment) on "
     "--judgments; dpo on a pair file; ilf-mle (MLE on refinements) and ilf-dpo (refinement "
     "preferred over the output) on a refinement file",
     "mle|cut|forward-prediction|hindsight|dpo|ilf-mle|ilf-dpo", 0},
    {"judgments", FLAG_STRING, &opt.judgments, NULL, 0, -1,
     "judgment records for --objective cut, forward-prediction, hindsight"},
    {"beta", FLAG_DOUBLE, &opt.dpo_beta, "0.1", 1e-12, 1e6,
     "dpo, ilf-dpo: beta of -log sigmoid(beta((pi_c - ref_c) - (pi_r - ref_r)))"},
    {"ref-model", FLAG_STRING, &opt.ref_model, NULL, 0, -1,
     "dpo, ilf-dpo: the frozen reference (default: the starting model); its log-probs are "
     "computed once into OUT/ref_logps.jsonl"},
    {"chosen-field", FLAG_STRING, &opt.chosen_field, NULL, 0, -1,
     "dpo on --judgments (JSONL) instead of a pair file: chosen = the record's field NAME (e.g. "
     "correct_output of `datasets synth`, i_ans), rejected = its output; records without it "
     "(or with it equal to the output) are skipped and counted"},
    {"no-l1", FLAG_BOOL, &opt.no_l1, NULL, 0, -1,
     "CUT ablation -L1 (Table 4): no Misalign term (no unlikelihood, no Misalign MLE)"},
    {"no-align-p", FLAG_BOOL, &opt.no_align_p, NULL, 0, -1,
     "CUT ablation -Align-P: train on no positive (Align-P) example"},
    {"no-align-n-mle", FLAG_BOOL, &opt.no_align_n_mle, NULL, 0, -1,
     "CUT ablation -Align-N MLE: drop the MLE term on Align-N (still used for detection)"},
    {"no-detection", FLAG_BOOL, &opt.no_detection, NULL, 0, -1,
     "CUT ablation -detection: unlikelihood on every Misalign token, not only flagged ones"},
    {"no-dynamic-weight", FLAG_BOOL, &opt.no_dynamic_weight, NULL, 0, -1,
     "CUT ablation -dynamic weighting: gamma 0 (what the reference code does anyway)"},
    {"judgment-format", FLAG_STRING, &opt.judgment_format, "auto", 0, -1,
     "cut (CUT/Alpaca JSON array), shepherd (JSONL) or jsonl (generic); auto: by extension",
     "cut|shepherd|jsonl|auto", 0},
    {"template", FLAG_STRING, &opt.template_path, NULL, 0, -1,
     "prompt templates JSON (prompt_no_input, prompt_no_input_judge, response_split); "
     "default: the reference Alpaca templates"},
    {"preset", FLAG_STRING, &opt.preset, "online", 0, -1,
     "online (lambda 1.1, alpha 1) or offline (lambda 1.2, alpha 0.5): the reference's λ and α; "
     "reference-online or reference-offline: every setting of its released scripts (LoRA, "
     "schedule, batch, 1 epoch, cutoff, Align-P ratio, $ERROR$ kept, ...; see README) as "
     "defaults that other flags override",
     TRAIN_PRESET_CHOICES, 0},
    {"lambda", FLAG_DOUBLE, &opt.lambda, "0", 0, 1e9,
     "flag a Misalign token when p(y|x,j-)/p(y|x) > lambda (0: the preset's)"},
    {"alpha", FLAG_DOUBLE, &opt.alpha, "-1", -1, 1e9,
     "weight of the unlikelihood terms (-1: the preset's)"},
    {"gamma", FLAG_DOUBLE, &opt.gamma, "0", 0, 100, "v4 dynamic weight pA^gamma (0: the code's)"},
    {"cutoff", FLAG_INT, &opt.cutoff, "2048", 0, 1e9,
     "CUT: a longer sequence keeps its last N tokens, then EOS (the reference's cutoff_len); "
     "capped at the model's context - 1 (0: that cap)"},
    {"align-p-ratio", FLAG_STRING, &opt.align_p_ratio, "off", 0, -1,
     "CUT: off, or R from 0 to 1: train on int(R x negatives) of the positives (Align-P), "
     "drawn as the reference draws them"},
    {"align-p-seed", FLAG_U64, &opt.align_p_seed, "42", 0, -1,
     "Python random.seed of that draw (42: the reference's)"},
    {"skip-bad", FLAG_BOOL, &opt.skip_bad, NULL, 0, -1, "skip and count malformed records"},
    {"keep-error", FLAG_BOOL, &opt.keep_error, NULL, 0, -1,
     "keep \"$ERROR$\" judgments as negatives, as the reference does"},
    {"model", FLAG_STRING, &opt.model, NULL, 0, -1,
     "starting model: llama2.c .bin or Hugging Face folder; default: embedded stories260K"},
    {"tokenizer", FLAG_STRING, &opt.tokenizer, NULL, 0, -1, "tokenizer (default: the model's)"},
    {"init", FLAG_STRING, &opt.init, "pretrained", 0, -1,
     "pretrained, or random (a new model shaped by --config)", "pretrained|random", 0},
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
     "learning-rate schedule (Hugging Face's)", "constant|constant_with_warmup|linear|cosine", 0},
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
    FLAG_THREADS(&opt.threads),
    FLAG_COMPUTE(&opt.compute),
    FLAG_BASE_DTYPE(&opt.base_dtype),
};

static const CommandSpec SPEC = {
    "train",
    "train a model or LoRA adapters: MLE on a corpus, CUT or a baseline on judgments, DPO",
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

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

/* Once the data is read: SIGINT/SIGTERM now finish the update and save a checkpoint. */
static void catch_stop_signals(void *ctx) {
    (void)ctx;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* The flags as TrainRunOptions (read under preset, which may be NULL); 2 after printing why
 * on bad usage. */
static int to_options(TrainRunOptions *o, const Preset *preset, char *command_line, CkError *err) {
    train_run_options_init(o);
    if (train_objective_parse(opt.objective, &o->objective, err) != 0)
        return cli_fail(&SPEC, 2, err);
    o->beta = opt.dpo_beta;
    o->ref_model = opt.ref_model;
    o->chosen_field = opt.chosen_field;
    o->no_align_p = opt.no_align_p;
    o->no_dynamic_weight = opt.no_dynamic_weight;
    o->data = opt.data;
    o->judgments = opt.judgments;
    o->judgment_format = opt.judgment_format;
    o->template_path = opt.template_path;
    if (cut_preset_options(opt.preset, &o->cut, err) != 0) return cli_fail(&SPEC, 2, err);
    if (opt.lambda > 0) o->cut.lambda = opt.lambda;
    if (opt.alpha >= 0) o->cut.alpha = opt.alpha;
    o->cut.gamma = opt.gamma;
    o->cut.no_l1 = opt.no_l1;
    o->cut.no_align_n_mle = opt.no_align_n_mle;
    o->cut.no_detection = opt.no_detection;
    o->preset = opt.preset;
    o->cutoff = opt.cutoff;
    if (preset_parse_ratio(opt.align_p_ratio, &o->align_p_ratio, err) != 0)
        return cli_fail(&SPEC, 2, err);
    o->align_p_seed = opt.align_p_seed;
    o->skip_bad = opt.skip_bad;
    o->keep_error = opt.keep_error;
    o->seq_len = opt.seq_len;
    o->model = opt.model;
    o->tokenizer = opt.tokenizer;
    int rc = cli_apply_base_dtype(&SPEC, opt.base_dtype, &o->base_dtype);
    if (rc != 0) return rc;
    o->random_init = !strcmp(opt.init, "random");
    o->config = opt.config;
    o->lora = opt.lora;
    o->lora_r = opt.lora_r;
    o->lora_targets = opt.lora_targets;
    o->lora_alpha = opt.lora_alpha;
    o->lora_dropout = opt.lora_dropout;
    o->out = opt.out;
    o->steps = opt.steps;
    o->epochs = opt.epochs;
    /* --steps replaces a preset's epochs (unless --epochs was given another value too) */
    const char *preset_epochs = preset_value(preset, "epochs");
    if (o->steps > 0 && preset_epochs && o->epochs == strtod(preset_epochs, NULL)) o->epochs = 0;
    o->batch_size = opt.batch_size;
    o->micro_batch = opt.micro_batch;
    o->lr = opt.lr;
    o->warmup = opt.warmup;
    o->lr_from_first_step = opt.lr_from_first_step;
    if (schedule_parse_kind(opt.schedule, &o->schedule, err) != 0) return cli_fail(&SPEC, 2, err);
    o->adamw = (AdamWConfig){opt.beta1, opt.beta2, opt.eps, opt.weight_decay};
    o->max_grad_norm = opt.max_grad_norm;
    o->save_every = opt.save_every;
    o->keep = opt.keep;
    o->resume = opt.resume;
    o->seed = opt.seed;
    o->stop_after = opt.stop_after;
    o->threads = opt.threads;
    o->command_line = command_line;
    o->stop = &stop_requested;
    o->on_ready = catch_stop_signals;
    return train_run_check(o, err) != 0 ? cli_fail(&SPEC, 2, err) : 0;
}

static int run_train(int argc, char **argv) {
    int n_positional;
    const Preset *preset;
    int rc = preset_flags_parse(&SPEC, &opt.preset, argc, argv, NULL, 0, &n_positional, &preset);
    if (rc != 0) return rc;
    if ((rc = cli_apply_compute(&SPEC, opt.compute)) != 0) return rc;
    char command_line[2048] = "cutkit train";
    for (int i = 0; i < argc; i++)
        snprintf(command_line + strlen(command_line), sizeof command_line - strlen(command_line),
                 " %s", argv[i]);
    TrainRunOptions o;
    CkError err = {{0}};
    rc = to_options(&o, preset, command_line, &err);
    if (rc != 0) return rc;
    TrainReport report;
    rc = train_run(&o, &report, &err);
    if (rc != 0) {
        /* under mpirun the others may already wait for this rank in a collective: the
         * message goes out with the rank and every rank ends (MPI_Abort) */
        if (dist_size() > 1) {
            char line[1100];
            snprintf(line, sizeof line, "train: %s", err.msg);
            dist_abort(line);
        }
        return cli_fail(&SPEC, rc == TRAIN_RUN_BAD_OPTION ? 2 : 1, &err);
    }
    if (dist_rank() != 0) return 0;
    if (report.stopped_early)
        return cli_error(&SPEC, 0,
                         "stopped at step %lld; checkpoint saved in %s (continue with --resume)",
                         (long long)report.steps_done, report.saved);
    return cli_error(&SPEC, 0, "done, %lld updates, final loss %.4f; wrote %s",
                     (long long)report.steps_done, report.last_loss, report.saved);
}

int cmd_train(int argc, char **argv) {
    CkError err = {{0}};
    if (dist_init(&argc, &argv, &err) != 0) return cli_fail(&SPEC, 1, &err);
    int rc = run_train(argc, argv);
    /* every rank gets here unless one aborted (which ends them all) */
    dist_finalize();
    return rc;
}
