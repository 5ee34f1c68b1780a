/* cmd_eval_judge.c — `cutkit eval judge`: flags -> JudgeRunOptions -> judge_run
 * (eval/judge_run.h), which judges a model's outputs against a reference's into AlpacaEval's
 * annotations.json, resumably and sharded under mpirun; exit 1 when judgments are missing. */
#include <stdio.h>

#include "cli/commands.h"
#include "cli/compute_flag.h"
#include "eval/judge_run.h"
#include "eval/shard.h"
#include "train/dist.h"
#include "util/threads.h"

static JudgeRunOptions opt;
static struct {
    const char *judge;
    int no_randomize, threads;
    const char *compute, *judge_base_dtype;
} flag;

static FlagSpec FLAGS[] = {
    {"outputs", FLAG_STRING, &opt.outputs, NULL, 0, -1,
     "model_outputs.json of the evaluated model (output_2, generator_2)", NULL, 1},
    {"reference", FLAG_STRING, &opt.reference, NULL, 0, -1,
     "model_outputs.json of the baseline (output_1, generator_1), paired by instruction", NULL, 1},
    FLAG_OUT_REQUIRED(&opt.out,
                      "annotations.json to write; if it exists, judged records are kept (resume)"),
    {"judge", FLAG_STRING, &flag.judge, "model", 0, -1,
     "model (log-probabilities of two verdicts), command (--judge-command) or synth (the "
     "synthetic world's rules)",
     "model|command|synth", 0},
    {"judge-model", FLAG_STRING, &opt.judge_model, NULL, 0, -1,
     "judge model: llama2.c .bin or Hugging Face folder; default: embedded stories260K"},
    {"judge-tokenizer", FLAG_STRING, &opt.judge_tokenizer, NULL, 0, -1,
     "the judge model's tokenizer (default: the model's)"},
    {"judge-adapter", FLAG_STRING, &opt.judge_adapter, NULL, 0, -1,
     "PEFT LoRA adapter folder for the judge model"},
    {"judge-base-dtype", FLAG_STRING, &flag.judge_base_dtype, "f32", 0, -1,
     "dtype the judge model's matrices are held in (a Hugging Face folder: bf16/f16 as stored, "
     "int8 per-group absmax; norms stay f32)",
     "f32|bf16|f16|int8", 0},
    {"judge-template", FLAG_STRING, &opt.judge_template, NULL, 0, -1,
     "pairwise template JSON ({\"prompt\" or \"prompt_file\" (e.g. an AlpacaEval prompt, "
     "as it is), \"verdict_1\", \"verdict_2\", \"chat\": raw|plain|chatml|llama2}; "
     "eval/ALPACAEVAL.md); default: the built-in, shipped as eval/templates/pairwise_ab.json"},
    {"judge-command", FLAG_STRING, &opt.judge_command, NULL, 0, -1,
     "shell command (/bin/sh -c) reading {\"instruction\", \"output_1\", \"output_2\"} on stdin "
     "and printing a preference in [1, 2] or {\"preference\": p}"},
    {"timeout", FLAG_DOUBLE, &opt.timeout, "120", 0, 1e9,
     "seconds per judge command call (0: none)"},
    {"annotator", FLAG_STRING, &opt.annotator, NULL, 0, -1,
     "annotator name written (default: by judge kind)"},
    {"seed", FLAG_U64, &opt.seed, "0", 0, -1, "seed of the per-instruction order switch"},
    {"no-randomize", FLAG_BOOL, &flag.no_randomize, NULL, 0, -1,
     "always show the baseline first (no order switching)"},
    {"both-orders", FLAG_BOOL, &opt.both_orders, NULL, 0, -1,
     "judge both orders and average the two preferences"},
    {"retry-missing", FLAG_BOOL, &opt.retry_missing, NULL, 0, -1,
     "judge again the records of --out whose preference is missing (null)"},
    {"limit", FLAG_INT, &opt.limit, "0", 0, 1e9, "judge only the first N outputs (0: all)"},
    {"save-every", FLAG_INT, &opt.save_every, "20", 1, 1e9,
     "rewrite --out (atomically) every N judgments"},
    FLAG_THREADS(&flag.threads),
    FLAG_COMPUTE(&flag.compute),
};

static const CommandSpec SPEC = {
    "eval judge",
    "pairwise judging into AlpacaEval annotations.json",
    "--outputs MODEL.json --reference BASELINE.json --out annotations.json "
    "[--judge model|command|synth]",
    "output_1 is the reference (baseline), output_2 the model; preference 1: baseline better,\n"
    "2: model better, 1.5: draw, continuous for the model judge. Identical outputs are a draw\n"
    "without asking the judge. The order shown is switched for a seeded pseudo-random half of\n"
    "the instructions (is_switched) and flipped back (3 - p); raw_completion is the judge's\n"
    "verdict before flipping. A failed judgment is written with preference null and its error;\n"
    "the command then exits 1, and --retry-missing judges those records again.\n"
    "Sharded under MPI: `mpirun -np K cutkit eval judge ...` splits the pairs over K\n"
    "processes; rank 0 gathers the judgments and writes the same file.",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0],
};

const CommandSpec *cmd_eval_judge_spec(void) {
    return &SPEC;
}

static int run_eval_judge(int argc, char **argv) {
    char *positional[1];
    int n_positional;
    judge_run_options_init(&opt);
    int rc = flags_parse(&SPEC, argc, argv, positional, 0, &n_positional);
    if (rc != 0) return rc;
    if ((rc = cli_apply_base_dtype(&SPEC, flag.judge_base_dtype, &opt.judge_held)) != 0) return rc;
    CkError err = {{0}};
    judge_kind_parse(flag.judge, &opt.kind); /* one of the choices */
    opt.randomize = !flag.no_randomize;
    opt.log = stderr;
    if (judge_run_options_check(&opt, &err) != 0) return cli_fail(&SPEC, 2, &err);
    threads_set(flag.threads);
    if ((rc = cli_apply_compute(&SPEC, flag.compute)) != 0) return rc;
    JudgeRunReport r;
    if (judge_run(&opt, &r, &err) != 0) {
        shard_abort_ranks(SPEC.name, &err);
        return cli_fail(&SPEC, 1, &err);
    }
    if (!r.wrote) return 0; /* rank 0 holds the judgments and writes --out */
    fprintf(stderr, "%s: %d pairs, %d judged now, %d missing\n", opt.out, r.n_pairs, r.n_judged,
            r.n_missing);
    if (r.n_missing == 0) return 0;
    return cli_error(&SPEC, 1,
                     "%d judgments are missing (preference null)%s%s; rerun with "
                     "--retry-missing to judge them again",
                     r.n_missing, r.first_error[0] ? "; first error: " : "", r.first_error);
}

int cmd_eval_judge(int argc, char **argv) {
    CkError err = {{0}};
    if (dist_init(&argc, &argv, &err) != 0) return cli_fail(&SPEC, 1, &err);
    int rc = run_eval_judge(argc, argv);
    /* every rank gets here unless one aborted (which ends them all) */
    dist_finalize();
    return rc;
}
