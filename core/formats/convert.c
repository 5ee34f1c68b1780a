/* convert.c — see convert.h. */
#include "formats/convert.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/embedded.h"
#include "formats/hf_model.h"
#include "formats/llama2c.h"
#include "tokenizer/tokenizer_export.h"
#include "util/fileio.h"

void convert_options_init(ConvertOptions *o) {
    *o = (ConvertOptions){.format = CONVERT_AUTO, .dtype = ST_F32};
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Exports the llama2.c source's tokenizer into the folder o->to: the embedded tok512 for the
 * embedded model, else a tokenizer.bin beside the checkpoint. Returns 1 when there is none. */
static int export_tokenizer(const ConvertOptions *o, const ModelConfig *c, CkError *err) {
    Tokenizer tok;
    int rc;
    if (!o->from) {
        size_t size;
        const void *data = embedded_tokenizer(&size);
        rc = tokenizer_load_llama2c(&tok, data, size, c->vocab_size, err);
    } else {
        char path[4096];
        const char *slash = strrchr(o->from, '/');
        snprintf(path, sizeof path, "%.*s/tokenizer.bin", slash ? (int)(slash - o->from) : 1,
                 slash ? o->from : ".");
        if (access(path, F_OK) != 0) return 1;
        rc = tokenizer_load_llama2c_file(&tok, path, c->vocab_size, err);
    }
    if (rc == 0) rc = tokenizer_export_hf(&tok, o->to, c->seq_len, err);
    tokenizer_free(&tok);
    return rc;
}

/* Creates the folders above the destination (mkdir -p of its parent), so that a destination
 * in a folder not made yet is written rather than refused. */
static int make_parent(const char *to, CkError *err) {
    char parent[4096];
    if (snprintf(parent, sizeof parent, "%s", to) >= (int)sizeof parent)
        return ck_fail(err, "%.100s...: path too long", to);
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/') parent[--n] = '\0'; /* "out/hf/" names "out/hf" */
    char *slash = strrchr(parent, '/');
    if (!slash) return 0;          /* the current folder */
    if (slash == parent) return 0; /* the root */
    *slash = '\0';
    return fileio_make_dirs(parent, err);
}

int convert_model(const ConvertOptions *o, ConvertResult *r, CkError *err) {
    *r = (ConvertResult){0};
    if (!o->to) return ck_fail(err, "no destination");
    r->to_llama2c =
        o->format == CONVERT_LLAMA2C || (o->format == CONVERT_AUTO && ends_with(o->to, ".bin"));
    const int from_dir = o->from && is_dir(o->from);
    Model m;
    HfConfig cfg = {.bos_token_id = 1, .eos_token_id = 2};
    int rc;
    if (from_dir) {
        rc = hf_model_load(&m, &cfg, o->from, err);
    } else if (o->from) {
        rc = llama2c_load_file(&m, o->from, err);
    } else {
        rc = embedded_model_load(&m, err);
    }
    if (rc != 0) return -1;
    cfg.model = m.config;
    if (make_parent(o->to, err) != 0) {
        model_free(&m);
        return -1;
    }
    if (r->to_llama2c) {
        model_set_rope_style(&m, ROPE_INTERLEAVED);
        rc = llama2c_save(&m, o->to, err);
    } else {
        rc = hf_model_save(&m, &cfg, o->to, o->dtype, o->command_line, err);
    }
    model_free(&m);
    if (rc != 0) return -1;
    r->model_written = 1;
    /* A Hugging Face source folder keeps its own tokenizer files; llama2.c files get none. */
    if (r->to_llama2c || from_dir) return 0;
    rc = export_tokenizer(o, &cfg.model, err);
    if (rc < 0) return -1;
    r->tokenizer_written = rc == 0;
    return 0;
}
