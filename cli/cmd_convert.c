/* cmd_convert.c — `cutkit convert`: llama2.c checkpoint <-> Hugging Face folder. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "formats/convert.h"

static struct { const char *from, *to, *dtype, *format; } opt;

static FlagSpec FLAGS[] = {
    {"from", FLAG_STRING, &opt.from, NULL, 0, -1,
     "llama2.c .bin or Hugging Face folder; default: the embedded stories260K"},
    {"to", FLAG_STRING, &opt.to, NULL, 0, -1, "destination file (llama2.c) or folder (HF)", NULL,
     1},
    {"format", FLAG_STRING, &opt.format, "auto", 0, -1,
     "auto: llama2c when --to ends in .bin, else hf", "hf|llama2c|auto"},
    {"dtype", FLAG_STRING, &opt.dtype, "f32", 0, -1, "Hugging Face tensors", "f32|f16|bf16"},
};

static const CommandSpec SPEC = {
    "convert",
    "convert a model between llama2.c and Hugging Face formats",
    "[--from PATH] --to PATH [--format hf|llama2c] [--dtype f32|f16|bf16]",
    "A Hugging Face folder gets config.json and model.safetensors (q/k rows permuted to\n"
    "Hugging Face's rotary convention, as its own Llama conversion does); a llama2.c file\n"
    "gets the legacy version-0 layout. Files are written atomically. A Hugging Face folder\n"
    "also gets tokenizer.json and tokenizer_config.json when the source has a llama2.c\n"
    "tokenizer (the embedded one, or a tokenizer.bin beside the --from file); converting\n"
    "to llama2.c writes no tokenizer.",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0],
};

const CommandSpec *cmd_convert_spec(void) {
    return &SPEC;
}

int cmd_convert(int argc, char **argv) {
    char *positional[1];
    int n_positional;
    int rc = flags_parse(&SPEC, argc, argv, positional, 0, &n_positional);
    if (rc != 0) return rc;
    ConvertOptions o;
    convert_options_init(&o);
    o.from = opt.from;
    o.to = opt.to;
    o.format = !strcmp(opt.format, "hf")        ? CONVERT_HF
               : !strcmp(opt.format, "llama2c") ? CONVERT_LLAMA2C
                                                : CONVERT_AUTO;
    o.dtype = !strcmp(opt.dtype, "bf16") ? ST_BF16 : !strcmp(opt.dtype, "f16") ? ST_F16 : ST_F32;
    /* the command line goes into model.safetensors' metadata */
    char command_line[2048] = "cutkit convert";
    for (int i = 0; i < argc; i++)
        snprintf(command_line + strlen(command_line), sizeof command_line - strlen(command_line),
                 " %s", argv[i]);
    o.command_line = command_line;
    ConvertResult r;
    CkError err = {{0}};
    rc = convert_model(&o, &r, &err);
    if (r.model_written) {
        cli_error(&SPEC, 0, "wrote %s (%s)", opt.to,
                  r.to_llama2c ? "llama2.c version 0" : "Hugging Face folder");
    }
    if (rc != 0 && r.model_written)
        return cli_error(&SPEC, 1, "the model was written, tokenizer.json was not: %s", err.msg);
    if (rc != 0) return cli_fail(&SPEC, 1, &err);
    if (r.tokenizer_written) cli_error(&SPEC, 0, "wrote tokenizer.json and tokenizer_config.json");
    return 0;
}
