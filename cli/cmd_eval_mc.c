/* cmd_eval_mc.c — `cutkit eval mc`: flags -> McRunOptions -> mc_run (eval/mc_run.h), which
 * scores ARC, TruthfulQA MC1/MC2, HellaSwag and MMLU as lm-evaluation-harness does, resumably
 * and sharded under mpirun; --suite open-llm-v1 sets the leaderboard's four (eval/mc_suite.h). */
#include <stdio.h>

#include "cli/commands.h"
#include "formats/lm.h"
#include "cli/compute_flag.h"
#include "eval/harness.h"
#include "eval/mc_run.h"
#include "eval/mc_suite.h"
#include "eval/shard.h"
#include "train/dist.h"
#include "util/threads.h"

static McRunOptions opt;
static struct {
    const char *task, *suite;
    int threads, no_prefix_reuse, bos, no_bos;
    const char *compute;
    const char *base_dtype;
} flag;

static FlagSpec FLAGS[] = {
    {"task", FLAG_STRING, &flag.task, NULL, 0, -1,
     "comma-separated: arc_challenge, arc_easy, truthfulqa_mc1, truthfulqa_mc2, hellaswag, "
     "hellaswag_llamacpp, mmlu"},
    {"suite", FLAG_STRING, &flag.suite, NULL, 0, -1,
     "instead of --task: open-llm-v1 = ARC-Challenge 25-shot, HellaSwag 10-shot, MMLU 5-shot, "
     "TruthfulQA MC2 0-shot, harness b281b09 unless --harness-version; writes "
     "OUT/open_llm_v1.json",
     MC_SUITE_CHOICES, 0},
    FLAG_MODEL(&opt.model),
    FLAG_TOKENIZER(&opt.tokenizer),
    FLAG_BASE_DTYPE(&flag.base_dtype),
    FLAG_ADAPTER(&opt.adapter),
    {"data", FLAG_STRING, &opt.data, NULL, 0, -1,
     "test data: a file (one task) or a folder holding the datasets/data file names"},
    {"train-data", FLAG_STRING, &opt.train_data, NULL, 0, -1,
     "train split for --shots (a file or folder): ARC's (default: the shipped one), HellaSwag's "
     "canonical hellaswag_train.jsonl (default: exemplars from the validation docs)"},
    {"hellaswag-data", FLAG_STRING, &opt.hellaswag_data, NULL, 0, -1,
     "HellaSwag file: the canonical hellaswag_val.jsonl (sha256 checked) or llama.cpp's copy "
     "(default: --data, else the shipped llama.cpp copy, reported as hellaswag_llamacpp)"},
    {"mmlu-data", FLAG_STRING, &opt.mmlu_data, NULL, 0, -1,
     "MMLU's hendrycks data folder (dev/, test/; e.g. ../shared/data/mmlu); default: --data"},
    {"mmlu-subjects", FLAG_STRING, &opt.mmlu_subjects, NULL, 0, -1,
     "comma-separated MMLU subjects (default: all 57)"},
    {"shots", FLAG_INT, &opt.shots, "0", 0, 100,
     "few-shot exemplars per question (ARC, HellaSwag, MMLU)"},
    {"seed", FLAG_U64, &opt.seed, "1234", 1, 0, "few-shot sampler seed (the harness's default)"},
    {"limit", FLAG_INT, &opt.limit, "0", 0, 1e9,
     "score only the first N questions of each task, of each subject for MMLU (0: all)"},
    {"out", FLAG_STRING, &opt.out, "eval-mc", 0, -1, "output folder"},
    {"resume", FLAG_BOOL, &opt.resume, NULL, 0, -1, "skip items already in OUT/items.jsonl"},
    {"harness-version", FLAG_STRING, &opt.harness_version, NULL, 0, -1,
     "lm-evaluation-harness version to match: its BOS default, MC2 formula, few-shot draw, MMLU "
     "template and average (default " HARNESS_VERSION_DEFAULT
     "; b281b09, the Open LLM Leaderboard v1's, with --suite)",
     HARNESS_VERSION_CHOICES, 0},
    {"log-samples", FLAG_BOOL, &opt.log_samples, NULL, 0, -1,
     "also the harness's per-sample files, OUT/<model>/samples_<task>_<date>.jsonl"},
    {"batch", FLAG_INT, &opt.batch, "16", 1, 4096,
     "sequences per forward when a choice is scored on its own"},
    FLAG_THREADS(&flag.threads),
    FLAG_COMPUTE(&flag.compute),
    {"no-prefix-reuse", FLAG_BOOL, &flag.no_prefix_reuse, NULL, 0, -1,
     "score every context+choice separately (no shared context pass)"},
    {"bos", FLAG_BOOL, &flag.bos, NULL, 0, -1,
     "BOS before every context, whatever --harness-version says"},
    {"no-bos", FLAG_BOOL, &flag.no_bos, NULL, 0, -1,
     "no BOS before the context, whatever --harness-version says"},
};

static const CommandSpec SPEC = {
    "eval mc",
    "multiple-choice scoring: ARC, TruthfulQA MC1/MC2, HellaSwag, MMLU as lm-evaluation-harness",
    "--task arc_challenge[,truthfulqa_mc2,...] | --suite open-llm-v1 [--model PATH] [--out DIR] "
    "[--resume]",
    "Scores every choice of every question as the harness's loglikelihood requests (joint\n"
    "encoding split at the context, left truncation to the model's context) and reports what\n"
    "the harness reports (ARC acc and acc_norm by characters, plus acc_bytes and\n"
    "acc_per_token; TruthfulQA MC1 acc; MC2 acc, the mass on the true answers) with standard\n"
    "errors. --harness-version picks the version to match: up to 0.4.9.1 the harness puts no\n"
    "BOS before a Hugging Face model's context, from 0.4.9.2 the tokenizer's default decides\n"
    "(LLaMA: BOS); up to 0.4.8 MC2 counts the answers before the first false one as true,\n"
    "from 0.4.9 those labelled true (they differ on TruthfulQA #164 and #607). --bos or\n"
    "--no-bos overrides the BOS choice. b281b09 (the Open LLM Leaderboard v1's harness) draws\n"
    "exemplars after shuffling the docs with Random(42) and averages MMLU's 57 subjects\n"
    "unweighted; 0.4.x weight them by size. Inputs longer than the model's context are\n"
    "truncated on the left as the harness does; results.json counts them per task\n"
    "(diagnostics.<task>.requests_truncated). --no-bos overrides the BOS choice. Writes "
    "OUT/items.jsonl (one line per question as it\n"
    "finishes), OUT/results.json and the harness's own OUT/<model>/results_<date>.json\n"
    "(with --log-samples its samples_<task>_<date>.jsonl beside it); progress on stderr.\n"
    "Sharded under MPI (a build with -DCUTKIT_MPI=ON): `mpirun -np K cutkit eval mc ...`\n"
    "splits the items over K processes; rank 0 gathers them and writes the same files.",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0],
};

const CommandSpec *cmd_eval_mc_spec(void) {
    return &SPEC;
}

static int run_eval_mc(int argc, char **argv) {
    char *positional[1];
    int n_positional;
    mc_run_options_init(&opt);
    int rc = flags_parse(&SPEC, argc, argv, positional, 0, &n_positional);
    if (rc != 0) return rc;
    CkError err = {{0}};
    if (!flag.task && !flag.suite)
        return cli_error(&SPEC, 2, "--task is required (or --suite open-llm-v1)");
    if (flag.task && mc_tasks_parse(flag.task, opt.tasks, MC_TASK_COUNT, &opt.n_tasks, &err) != 0)
        return cli_error(&SPEC, 2, "--task: %s", err.msg);
    if (flag.suite && mc_suite_apply(&opt, flag.suite, &err) != 0) return cli_fail(&SPEC, 2, &err);
    opt.prefix_reuse = !flag.no_prefix_reuse;
    if (flag.bos && flag.no_bos) return cli_error(&SPEC, 2, "--bos and --no-bos: give one");
    opt.bos = flag.bos ? 1 : flag.no_bos ? 0 : MC_BOS_VERSION;
    opt.log = stderr;
    if (mc_run_options_check(&opt, &err) != 0) return cli_fail(&SPEC, 2, &err);
    if ((rc = cli_apply_base_dtype(&SPEC, flag.base_dtype, &opt.base_dtype)) != 0) return rc;
    threads_set(flag.threads);
    if ((rc = cli_apply_compute(&SPEC, flag.compute)) != 0) return rc;
    McRunReport report;
    if (mc_run(&opt, &report, &err) != 0) {
        shard_abort_ranks(SPEC.name, &err);
        return cli_fail(&SPEC, 1, &err);
    }
    if (report.wrote)
        fprintf(stderr, "cutkit %s: wrote %s, %s and %s (lm-evaluation-harness %s, %s)\n",
                SPEC.name, report.results_path, report.items_path, report.harness_path,
                report.harness_version, report.bos ? "BOS" : "no BOS");
    if (report.wrote && report.suite_path[0])
        fprintf(stderr, "cutkit %s: %s average %.4f: wrote %s\n", SPEC.name, opt.suite,
                report.suite_average, report.suite_path);
    return 0;
}

int cmd_eval_mc(int argc, char **argv) {
    CkError err = {{0}};
    if (dist_init(&argc, &argv, &err) != 0) return cli_fail(&SPEC, 1, &err);
    int rc = run_eval_mc(argc, argv);
    /* every rank gets here unless one aborted (which ends them all) */
    dist_finalize();
    return rc;
}
