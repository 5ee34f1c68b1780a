/* cmd_convert.c — `cutkit convert`: llama2.c checkpoint <-> Hugging Face folder. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"
#include "formats/embedded.h"
#include "formats/hf_model.h"
#include "formats/llama2c.h"
#include "tokenizer/tokenizer_export.h"

static struct { const char *from, *to, *dtype, *format; } opt;

static FlagSpec FLAGS[] = {
    {"from", FLAG_STRING, &opt.from, NULL, 0, -1,
     "llama2.c .bin or Hugging Face folder; default: the embedded stories260K"},
    {"to", FLAG_STRING, &opt.to, NULL, 0, -1, "destination file (llama2.c) or folder (HF)"},
    {"format", FLAG_STRING, &opt.format, "auto", 0, -1,
     "hf or llama2c; auto: llama2c when --to ends in .bin, else hf"},
    {"dtype", FLAG_STRING, &opt.dtype, "f32", 0, -1, "Hugging Face tensors: f32, f16 or bf16"},
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

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Exports the llama2.c source's tokenizer into the folder opt.to: the embedded tok512 for the
 * embedded model, else a tokenizer.bin beside the checkpoint. Returns 1 when there is none. */
static int export_tokenizer(const ModelConfig *c, CkError *err) {
    Tokenizer tok;
    int rc;
    if (!opt.from) {
        size_t size;
        const void *data = embedded_tokenizer(&size);
        rc = tokenizer_load_llama2c(&tok, data, size, c->vocab_size, err);
    } else {
        char path[4096];
        const char *slash = strrchr(opt.from, '/');
        snprintf(path, sizeof path, "%.*s/tokenizer.bin", slash ? (int)(slash - opt.from) : 1,
                 slash ? opt.from : ".");
        if (access(path, F_OK) != 0) return 1;
        rc = tokenizer_load_llama2c_file(&tok, path, c->vocab_size, err);
    }
    if (rc == 0) rc = tokenizer_export_hf(&tok, opt.to, c->seq_len, err);
    tokenizer_free(&tok);
    return rc;
}

int cmd_convert(int argc, char **argv) {
    char *positional[1];
    int n_positional;
    int rc = flags_parse(&SPEC, argc, argv, positional, 0, &n_positional);
    if (rc != 0) return rc;
    if (!opt.to) {
        fprintf(stderr, "cutkit convert: --to is required\n");
        return 2;
    }
    int to_llama2c;
    if (!strcmp(opt.format, "auto")) {
        to_llama2c = ends_with(opt.to, ".bin");
    } else if (!strcmp(opt.format, "hf") || !strcmp(opt.format, "llama2c")) {
        to_llama2c = !strcmp(opt.format, "llama2c");
    } else {
        fprintf(stderr, "cutkit convert: --format expects hf, llama2c or auto, got '%s'\n",
                opt.format);
        return 2;
    }
    SafetensorsDtype dtype;
    if (!strcmp(opt.dtype, "f32")) {
        dtype = ST_F32;
    } else if (!strcmp(opt.dtype, "bf16")) {
        dtype = ST_BF16;
    } else if (!strcmp(opt.dtype, "f16")) {
        dtype = ST_F16;
    } else {
        fprintf(stderr, "cutkit convert: --dtype expects f32, f16 or bf16, got '%s'\n", opt.dtype);
        return 2;
    }
    Model m;
    HfConfig cfg = {.bos_token_id = 1, .eos_token_id = 2};
    CkError err = {{0}};
    if (opt.from && is_dir(opt.from)) {
        rc = hf_model_load(&m, &cfg, opt.from, &err);
    } else if (opt.from) {
        rc = llama2c_load_file(&m, opt.from, &err);
    } else {
        size_t size;
        const void *data = embedded_model(&size);
        rc = llama2c_load(&m, data, size, &err);
    }
    if (rc != 0) {
        fprintf(stderr, "cutkit convert: %s\n", err.msg);
        return 1;
    }
    cfg.model = m.config;
    char command_line[2048] = "cutkit convert";
    for (int i = 0; i < argc; i++)
        snprintf(command_line + strlen(command_line), sizeof command_line - strlen(command_line),
                 " %s", argv[i]);
    if (to_llama2c) {
        model_set_rope_style(&m, ROPE_INTERLEAVED);
        rc = llama2c_save(&m, opt.to, &err);
    } else {
        rc = hf_model_save(&m, &cfg, opt.to, dtype, command_line, &err);
    }
    model_free(&m);
    if (rc != 0) {
        fprintf(stderr, "cutkit convert: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "cutkit convert: wrote %s (%s)\n", opt.to,
            to_llama2c ? "llama2.c version 0" : "Hugging Face folder");
    if (!to_llama2c && !(opt.from && is_dir(opt.from))) {
        rc = export_tokenizer(&cfg.model, &err);
        if (rc < 0) {
            fprintf(stderr, "cutkit convert: the model was written, tokenizer.json was not: %s\n",
                    err.msg);
            return 1;
        }
        if (rc == 0)
            fprintf(stderr, "cutkit convert: wrote tokenizer.json and tokenizer_config.json\n");
    }
    return 0;
}
