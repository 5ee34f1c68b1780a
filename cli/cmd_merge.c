/* cmd_merge.c — `cutkit merge`: fold a PEFT LoRA adapter into its base model and save it. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "formats/hf_model.h"
#include "formats/llama2c.h"
#include "formats/lm.h"
#include "formats/peft.h"

static struct { const char *model, *adapter, *out, *dtype; } opt;

static FlagSpec FLAGS[] = {
    {"model", FLAG_STRING, &opt.model, NULL, 0, -1,
     "base model: llama2.c .bin or Hugging Face folder; default: embedded stories260K"},
    {"adapter", FLAG_STRING, &opt.adapter, NULL, 0, -1, "PEFT adapter folder"},
    {"out", FLAG_STRING, &opt.out, NULL, 0, -1,
     "merged model: a folder (Hugging Face) or a .bin file (llama2.c)"},
    {"dtype", FLAG_STRING, &opt.dtype, "f32", 0, -1, "Hugging Face tensors: f32, f16 or bf16"},
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
    char *positional[1];
    int n_positional;
    int rc = flags_parse(&SPEC, argc, argv, positional, 0, &n_positional);
    if (rc != 0) return rc;
    if (!opt.adapter || !opt.out) {
        fprintf(stderr, "cutkit merge: --adapter and --out are required\n");
        return 2;
    }
    SafetensorsDtype dtype = ST_F32;
    if (!strcmp(opt.dtype, "bf16"))
        dtype = ST_BF16;
    else if (!strcmp(opt.dtype, "f16"))
        dtype = ST_F16;
    else if (strcmp(opt.dtype, "f32") != 0) {
        fprintf(stderr, "cutkit merge: --dtype expects f32, f16 or bf16, got '%s'\n", opt.dtype);
        return 2;
    }
    LanguageModel lm;
    CkError err = {{0}};
    LoraAdapters ad;
    if (lm_open(&lm, opt.model, NULL, &err) != 0) {
        fprintf(stderr, "cutkit merge: %s\n", err.msg);
        return 1;
    }
    rc = peft_load(&ad, &lm.model, opt.adapter, &err);
    if (rc == 0) {
        rc = lora_merge(&lm.model, &ad, &err);
        lora_free(&ad);
    }
    size_t n = strlen(opt.out);
    if (rc == 0 && n > 4 && !strcmp(opt.out + n - 4, ".bin")) {
        model_set_rope_style(&lm.model, ROPE_INTERLEAVED);
        rc = llama2c_save(&lm.model, opt.out, &err);
    } else if (rc == 0) {
        HfConfig cfg = {.model = lm.model.config,
                        .bos_token_id = lm.tokenizer.bos_id,
                        .eos_token_id = lm.tokenizer.eos_id};
        rc = hf_model_save(&lm.model, &cfg, opt.out, dtype, "cutkit merge", &err);
    }
    lm_close(&lm);
    if (rc != 0) {
        fprintf(stderr, "cutkit merge: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "cutkit merge: wrote %s\n", opt.out);
    return 0;
}
