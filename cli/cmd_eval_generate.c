/* cmd_eval_generate.c — `cutkit eval generate`: flags -> GenerateRunOptions -> generate_run
 * (eval/generate_run.h), which answers instructions into AlpacaEval's model_outputs.json,
 * resumably and sharded under mpirun. */
#include <stdio.h>

#include "cli/commands.h"
#include "cli/compute_flag.h"
#include "formats/lm.h"
#include "eval/generate_run.h"
#include "eval/shard.h"
#include "train/dist.h"
#include "util/threads.h"

static GenerateRunOptions opt;
static struct {
    const char *stop;
    int threads;
    const char *base_dtype;
} flag;

static FlagSpec FLAGS[] = {
    {"instructions", FLAG_STRING, &opt.instructions, NULL, 0, -1,
     "JSON array of instructions: a model_outputs.json (e.g. shared/data/alpaca_eval/results/"
     "gpt4_1106_preview/model_outputs.json holds the 805 AlpacaEval ones), objects with "
     "\"instruction\" (+ optional \"input\", \"dataset\"), or strings",
     NULL, 1},
    FLAG_OUT_REQUIRED(&opt.out,
                      "model_outputs.json to write; if it exists, generation resumes after its "
                      "records"),
    FLAG_MODEL(&opt.model),
    FLAG_TOKENIZER(&opt.tokenizer),
    FLAG_BASE_DTYPE(&flag.base_dtype),
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
    {"stop", FLAG_STRING, &flag.stop, NULL, 0, -1,
     "stop string, or a JSON array of them (e.g. '[\"\\n\\n###\"]'); cut from the output"},
    {"limit", FLAG_INT, &opt.limit, "0", 0, 1e9, "answer only the first N instructions (0: all)"},
    {"save-every", FLAG_INT, &opt.save_every, "10", 1, 1e9,
     "rewrite the output file (atomically) every N responses"},
    {"batch", FLAG_INT, &opt.batch, "16", 1, 4096,
     "responses decoded together (continuous batching; the responses do not depend on it)"},
    FLAG_THREADS(&flag.threads),
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

static int run_eval_generate(int argc, char **argv) {
    char *positional[1];
    int n_positional;
    generate_run_options_init(&opt);
    int rc = flags_parse(&SPEC, argc, argv, positional, 0, &n_positional);
    if (rc != 0) return rc;
    if ((rc = cli_apply_base_dtype(&SPEC, flag.base_dtype, &opt.base_dtype)) != 0) return rc;
    CkError err = {{0}};
    char **stops = NULL;
    if (generate_stops_parse(flag.stop, &stops, &opt.n_stops, &err) != 0)
        return cli_error(&SPEC, 2, "--stop: %s", err.msg);
    opt.stops = (const char *const *)stops;
    opt.log = stderr;
    threads_set(flag.threads);
    GenerateRunReport report;
    rc = generate_run(&opt, &report, &err);
    generate_stops_free(stops, opt.n_stops);
    if (rc != 0) {
        shard_abort_ranks(SPEC.name, &err);
        return cli_fail(&SPEC, 1, &err);
    }
    if (report.wrote)
        fprintf(stderr, "%s: %d responses by %s (batch %d, %ld tokens, %.1f tokens/s)\n", opt.out,
                report.n_records, report.generator, report.batch, report.tokens,
                report.seconds > 0 ? report.tokens / report.seconds : 0.0);
    return 0;
}

int cmd_eval_generate(int argc, char **argv) {
    CkError err = {{0}};
    if (dist_init(&argc, &argv, &err) != 0) return cli_fail(&SPEC, 1, &err);
    int rc = run_eval_generate(argc, argv);
    /* every rank gets here unless one aborted (which ends them all) */
    dist_finalize();
    return rc;
}
