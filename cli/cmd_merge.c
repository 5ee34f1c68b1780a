/* cmd_merge.c — `cutkit merge`: fold a PEFT LoRA adapter into its base model and save it
 * (train/merge.h). */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "train/merge.h"

static struct { const char *model, *adapter, *out, *dtype; } opt;

static FlagSpec FLAGS[] = {
    {"model", FLAG_STRING, &opt.model, NULL, 0, -1,
     "base model: llama2.c .bin or Hugging Face folder; default: embedded stories260K"},
    {"adapter", FLAG_STRING, &opt.adapter, NULL, 0, -1, "PEFT adapter folder", NULL, 1},
    FLAG_OUT_REQUIRED(&opt.out, "merged model: a folder (Hugging Face) or a .bin file (llama2.c)"),
    {"dtype", FLAG_STRING, &opt.dtype, "f32", 0, -1, "Hugging Face tensors", "f32|f16|bf16"},
};

static const CommandSpec SPEC = {"merge",
                                 "merge a LoRA adapter into its base model",
                                 "--adapter DIR --out PATH [--model PATH]",
                                 "W <- W + (lora_alpha / r) B A for every adapted projection.",
                                 FLAGS,
                                 sizeof FLAGS / sizeof FLAGS[0]};

const CommandSpec *cmd_merge_spec(void) {
    return &SPEC;
}

int cmd_merge(int argc, char **argv) {
    int n_positional;
    int rc = flags_parse(&SPEC, argc, argv, NULL, 0, &n_positional);
    if (rc != 0) return rc;
    MergeOptions o;
    merge_options_init(&o);
    o.model = opt.model;
    o.adapter = opt.adapter;
    o.out = opt.out;
    o.dtype = !strcmp(opt.dtype, "bf16") ? ST_BF16 : !strcmp(opt.dtype, "f16") ? ST_F16 : ST_F32;
    CkError err = {{0}};
    if (merge_run(&o, &err) != 0) return cli_fail(&SPEC, 1, &err);
    return cli_error(&SPEC, 0, "wrote %s", opt.out);
}
