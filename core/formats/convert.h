/* convert.h — a model converted between the llama2.c and Hugging Face formats, with its
 * tokenizer where the source has a llama2.c one (what `cutkit convert` does). */
#ifndef CK_CONVERT_H
#define CK_CONVERT_H

#include "formats/safetensors.h"
#include "util/ck_error.h"

typedef enum {
    CONVERT_AUTO,    /* llama2c when the destination ends in ".bin", else hf */
    CONVERT_HF,      /* a Hugging Face folder: config.json, model.safetensors */
    CONVERT_LLAMA2C, /* a legacy version-0 llama2.c checkpoint */
} ConvertFormat;

typedef struct {
    const char *from;         /* llama2.c file or Hugging Face folder; NULL: the embedded model */
    const char *to;           /* destination file (llama2.c) or folder (Hugging Face) */
    ConvertFormat format;     /* default CONVERT_AUTO */
    SafetensorsDtype dtype;   /* Hugging Face tensors; default ST_F32 */
    const char *command_line; /* stored in model.safetensors' metadata (NULL: none) */
} ConvertOptions;

typedef struct {
    int to_llama2c;        /* the format written: 1 llama2.c, 0 Hugging Face */
    int model_written;     /* the destination holds the converted model */
    int tokenizer_written; /* tokenizer.json and tokenizer_config.json were written too */
} ConvertResult;

/* Sets the defaults (from the embedded model, format auto, f32). */
void convert_options_init(ConvertOptions *o);

/* Loads the model at o->from and writes it to o->to (each file atomically), creating the
 * folders above o->to that do not exist yet. A Hugging Face
 * destination also gets tokenizer.json and tokenizer_config.json when the source has a
 * llama2.c tokenizer: the embedded tok512 for the embedded model, else a tokenizer.bin beside
 * the --from file. Returns 0, or -1 with err filled; r says what was written, so a failure
 * after the model (the tokenizer export) shows as r->model_written. */
int convert_model(const ConvertOptions *o, ConvertResult *r, CkError *err);

#endif
