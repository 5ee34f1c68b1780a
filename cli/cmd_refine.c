/* cmd_refine.c — `cutkit refine`: flags -> RefineRunOptions -> refine_run (train/refine_run.h),
 * which has a model rewrite each negatively judged response given its judgment (ILF's first
 * step) into OUT/refinements.jsonl, resumably. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/compute_flag.h"
#include "train/refine_run.h"
#include "util/threads.h"

static RefineRunOptions opt;
static struct {
    int threads;
    const char *base_dtype;
} flag;

static FlagSpec FLAGS[] = {
    {"judgments", FLAG_STRING, &opt.judgments, NULL, 0, -1,
     "judgment records, as `train --objective cut` reads them; the negative ones are refined", NULL,
     1},
    {"judgment-format", FLAG_STRING, &opt.judgment_format, "auto", 0, -1,
     "format of --judgments (auto: .jsonl is jsonl, else cut)", "cut|shepherd|jsonl|auto"},
    FLAG_OUT_REQUIRED(&opt.out, "folder to write refinements.jsonl (and refine.json) into"),
    FLAG_MODEL(&opt.model),
    FLAG_TOKENIZER(&opt.tokenizer),
    FLAG_BASE_DTYPE(&flag.base_dtype),
    {"adapter", FLAG_STRING, &opt.adapter, NULL, 0, -1,
     "PEFT LoRA adapter folder, merged into the model before generating"},
    {"template", FLAG_STRING, &opt.template_path, NULL, 0, -1,
     "refinement template JSON {\"prompt_no_input\", \"prompt_input\", \"stop\"} with "
     "{instruction} {input} {output} {judgment}; default: the built-in one (cli/README.md)"},
    {"max-new-tokens", FLAG_INT, &opt.max_new_tokens, "256", 1, 1000000,
     "tokens per refinement at most"},
    {"temperature", FLAG_FLOAT, &opt.temperature, "0", 0, 100, "0 is greedy"},
    {"top-p", FLAG_FLOAT, &opt.top_p, "0.9", 1e-6, 1, "nucleus sampling mass"},
    {"seed", FLAG_U64, &opt.seed, "42", 0, -1,
     "sampling seed; record i samples with a seed mixed from (seed, i)"},
    {"batch", FLAG_INT, &opt.batch, "16", 1, 4096,
     "records decoded together (continuous batching; the refinements do not depend on it)"},
    {"limit", FLAG_INT, &opt.limit, "0", 0, 1e9,
     "refine only the first N negative records (0: all)"},
    {"resume", FLAG_BOOL, &opt.resume, NULL, 0, -1,
     "continue the refinements in --out (same settings required)"},
    {"skip-too-long", FLAG_BOOL, &opt.skip_too_long, NULL, 0, -1,
     "skip (and count) a record whose prompt fills the model's context, instead of failing"},
    {"stop-after", FLAG_INT, &opt.stop_after, "0", 0, 1e9,
     "stop after N new refinements, as an interruption would (tests)"},
    FLAG_THREADS(&flag.threads),
};

static const CommandSpec SPEC = {
    "refine",
    "rewrite negatively judged responses given their judgments (the ILF baselines' data)",
    "--judgments FILE --out DIR [--model PATH] [--template FILE] [--resume]",
    "For each record with a negative judgment, formats the refinement template (instruction,\n"
    "input, original response, judgment), generates the improved response (greedy at\n"
    "--temperature 0, else seeded top-p sampling; record i's sample depends only on --seed and\n"
    "i), cuts it at the template's stop string and writes one line to DIR/refinements.jsonl:\n"
    "{index, instruction, input, output, judgment, refinement}. Positive records are skipped\n"
    "and counted. Up to --batch records decode together; lines are written in file order, each\n"
    "appended and fsync'd once the records before it are; SIGINT/SIGTERM write the finished\n"
    "ones and stop; --resume continues (a torn last line is dropped; the records that were\n"
    "still decoding are redone), giving the file an uninterrupted run gives.\n"
    "`train --objective ilf-mle|ilf-dpo` reads the file.",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0],
};

const CommandSpec *cmd_refine_spec(void) {
    return &SPEC;
}

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

int cmd_refine(int argc, char **argv) {
    char *positional[1];
    int n_positional;
    refine_run_options_init(&opt);
    int rc = flags_parse(&SPEC, argc, argv, positional, 0, &n_positional);
    if (rc != 0) return rc;
    if ((rc = cli_apply_base_dtype(&SPEC, flag.base_dtype, &opt.base_dtype)) != 0) return rc;
    threads_set(flag.threads);
    opt.log = stderr;
    opt.stop = &stop_requested;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    RefineRunReport report;
    CkError err = {{0}};
    if (refine_run(&opt, &report, &err) != 0) return cli_fail(&SPEC, 1, &err);
    if (report.stopped_early)
        return cli_error(&SPEC, 0,
                         "stopped after %d of %d refinements in %s (continue with --resume)",
                         report.n_written, report.n_to_refine, report.path);
    return cli_error(&SPEC, 0,
                     "%d refinements in %s (%d records skipped: not negative; %d: too long)",
                     report.n_written, report.path, report.n_skipped, report.n_too_long);
}
