/* cmd_align_online.c — `cutkit align-online`: flags → OnlineRunOptions → online_run
 * (train/online_run.h, which documents the stage files and the resume). */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/preset_flags.h"
#include "train/online_run.h"
#include "train/presets.h"
#include "util/threads.h"

static OnlineRunOptions opt;
static const char *judge_spec, *align_p_ratio;
static double judge_timeout;

static FlagSpec FLAGS[] = {
    {"instructions", FLAG_STRING, &opt.instructions, NULL, 0, -1,
     "instruction pool: JSON array (strings or {\"instruction\"}) or JSON lines", NULL, 1},
    FLAG_OUT_REQUIRED(&opt.out, "run directory (created; rerun to resume)"),
    {"preset", FLAG_STRING, &opt.preset, "none", 0, -1,
     "reference: the reference's loop as defaults that other flags override (1000 per "
     "iteration, greedy, 2048 tokens, responses as its generate.py keeps them, `cutkit train "
     "--preset reference-online`, LoRA merged into f16; see README)",
     ONLINE_PRESET_CHOICES, 0},
    {"model", FLAG_STRING, &opt.model, NULL, 0, -1,
     "starting model: llama2.c .bin or Hugging Face folder; default: embedded stories260K"},
    {"judge", FLAG_STRING, &judge_spec, "synth", 0, -1,
     "synth (the synthetic world's rule-based judge), command:CMD (one JSON object "
     "{\"instruction\",\"output\"} on stdin; prints the judgment, blank or {\"judgment\":null} "
     "for none) or file:PATH (precomputed judgments)"},
    {"judge-timeout", FLAG_DOUBLE, &judge_timeout, "120", 0.001, 1e6,
     "seconds a judge command may take for one item"},
    {"iterations", FLAG_INT, &opt.iterations, "3", 1, 1e6, "generate-judge-train rounds"},
    {"per-iteration", FLAG_INT, &opt.per_iteration, "64", 1, 1e9,
     "new instructions per iteration (taken in order, wrapping around the pool)"},
    {"template", FLAG_STRING, &opt.template_path, NULL, 0, -1,
     "prompt templates JSON for generation and training (default: the reference Alpaca)"},
    {"max-tokens", FLAG_INT, &opt.max_tokens, "256", 1, 1e6, "tokens per response at most"},
    {"temperature", FLAG_FLOAT, &opt.temperature, "1", 0, 100, "sampling temperature (0: greedy)"},
    {"top-p", FLAG_FLOAT, &opt.top_p, "1", 1e-6, 1, "nucleus sampling mass"},
    {"keep-after-split", FLAG_BOOL, &opt.keep_after_split, NULL, 0, -1,
     "keep what the model writes after a second response marker (the reference's "
     "generate.py does; by default the response ends there)"},
    {"strip", FLAG_BOOL, &opt.strip, NULL, 0, -1,
     "strip white space from both ends of a response as Python's str.strip() (the "
     "reference's generate.py)"},
    {"seed", FLAG_U64, &opt.seed, "42", 0, -1, "sampling and training seed"},
    {"steps", FLAG_INT, &opt.steps, "0", 0, 1e9,
     "updates per iteration (0: one epoch over the iteration's judgments)"},
    {"batch-size", FLAG_INT, &opt.batch_size, "8", 1, 1e6, "examples per update"},
    {"lr", FLAG_DOUBLE, &opt.lr, "4e-4", 0, 10, "peak learning rate"},
    {"warmup", FLAG_INT, &opt.warmup, "0", 0, 1e9,
     "warmup updates per iteration (the reference's 100 exceeds its ~45 updates: its lr never "
     "leaves the warmup)"},
    {"lambda", FLAG_DOUBLE, &opt.lambda, "1.1", 0, 1e9, "CUT detection threshold"},
    {"alpha", FLAG_DOUBLE, &opt.alpha, "1", 0, 1e9, "CUT unlikelihood weight"},
    {"lora", FLAG_BOOL, &opt.lora, NULL, 0, -1,
     "train LoRA adapters (merged into the model after each iteration)"},
    {"merge-dtype", FLAG_STRING, &opt.merge_dtype, "f32", 0, -1,
     "tensors of the merged models (the reference merges into f16)", "f32|f16|bf16", 0},
    {"cutoff", FLAG_INT, &opt.cutoff, "2048", 0, 1e9,
     "`cutkit train --cutoff`: a longer sequence keeps its last N tokens (capped at the "
     "model's context - 1; 0: that cap)"},
    {"align-p-ratio", FLAG_STRING, &align_p_ratio, "off", 0, -1,
     "`cutkit train --align-p-ratio`: off, or R from 0 to 1: int(R x negatives) positives"},
    {"align-p-seed", FLAG_U64, &opt.align_p_seed, "42", 0, -1,
     "`cutkit train --align-p-seed` (42: the reference's)"},
    {"train-preset", FLAG_STRING, &opt.train_preset, NULL, 0, -1,
     "`cutkit train --preset` of each training (its flags above override it)", TRAIN_PRESET_CHOICES,
     0},
    {"train-settings", FLAG_STRING, &opt.train_settings, NULL, 0, -1,
     "JSON object of further `cutkit train` flags (passed as its --settings)"},
    FLAG_THREADS(&opt.threads),
};

static const CommandSpec SPEC = {
    "align-online",
    "online CUT: generate, judge, train, merge; iterate",
    "--instructions PATH --out DIR [--judge synth|command:CMD|file:PATH] [--iterations N]",
    "Each iteration K (OUT/iter-K) generates responses to the next --per-iteration\n"
    "instructions with the current model, judges them, CUT-trains on the judgments with\n"
    "`cutkit train` and (with --lora) merges the adapter into a new model. Every stage writes\n"
    "its file as it goes; rerunning the same command resumes at the first unfinished stage.\n"
    "OUT/summary.json lists the iterations' counts (responses, negatives, errors found);\n"
    "OUT/config.json the settings in effect (--preset reference: the reference's loop).",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0],
};

const CommandSpec *cmd_align_online_spec(void) {
    return &SPEC;
}

int cmd_align_online(int argc, char **argv) {
    online_run_options_init(&opt);
    char *positional[1];
    const Preset *preset;
    int n_positional, rc = preset_flags_parse(&SPEC, &opt.preset, argc, argv, positional, 0,
                                              &n_positional, &preset);
    if (rc != 0) return rc;
    CkError err = {{0}};
    if (preset_parse_ratio(align_p_ratio, &opt.align_p_ratio, &err) != 0)
        return cli_fail(&SPEC, 2, &err);
    OnlineJudge judge;
    if (online_judge_open(&judge, judge_spec, judge_timeout, &err) != 0)
        return cli_error(&SPEC, 2, "--judge: %s", err.msg);
    if (strlen(opt.out) > ONLINE_RUN_MAX_OUT) {
        online_judge_close(&judge);
        return cli_error(&SPEC, 2, "--out: the path is too long");
    }
    threads_set(opt.threads);
    opt.judge = &judge;
    opt.runner.binary = "/proc/self/exe"; /* the children run this very binary */
    opt.runner.stop = stage_catch_stop_signals();
    opt.log = stderr;
    OnlineRunResult result;
    rc = online_run(&opt, &result, &err);
    online_judge_close(&judge);
    if (*opt.runner.stop)
        return cli_error(&SPEC, 130, "interrupted; rerun the same command to resume");
    if (rc != 0) {
        cli_fail(&SPEC, 1, &err);
        return cli_error(&SPEC, 1, "stopped; rerun the same command to resume");
    }
    fprintf(stderr, "cutkit %s: done; final model %s; summary in %s/summary.json\n", SPEC.name,
            result.final_model[0] ? result.final_model : "embedded:stories260K", opt.out);
    return 0;
}
