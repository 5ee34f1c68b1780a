/* merge.h — folding a trained LoRA adapter into its base model and saving the result, as
 * `cutkit merge` does: W <- W + (lora_alpha / r) B A for every adapted projection. */
#ifndef CK_MERGE_H
#define CK_MERGE_H

#include "formats/safetensors.h"
#include "util/ck_error.h"

typedef struct {
    const char *model;      /* the base: llama2.c .bin or Hugging Face folder; NULL: embedded */
    const char *adapter;    /* the PEFT adapter folder */
    const char *out;        /* a path ending in .bin: a llama2.c file; else a Hugging Face folder */
    SafetensorsDtype dtype; /* Hugging Face tensors: ST_F32, ST_F16 or ST_BF16 */
    const char
        *command_line; /* recorded in the Hugging Face folder's metadata; NULL: "cutkit merge" */
} MergeOptions;

/* The dtype called name ("f32", "f16" or "bf16", as `cutkit merge --dtype` takes it) into
 * *dtype; -1 with err naming the three for any other. */
int merge_dtype_from_name(const char *name, SafetensorsDtype *dtype, CkError *err);

/* Fills *o with `cutkit merge`'s defaults (embedded base, F32; no adapter or out). */
void merge_options_init(MergeOptions *o);

/* Opens the base model, applies the adapter, merges it and writes o->out; -1 with err on any
 * failure (a missing or mismatched adapter, an unwritable out). Releases everything. */
int merge_run(const MergeOptions *o, CkError *err);

#endif
