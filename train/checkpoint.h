/* checkpoint.h — checkpoint directories that an interruption at any moment leaves usable.
 *
 * Layout of a run's directory DIR:
 *   DIR/checkpoint-<step>/         one complete checkpoint: the weights (model.safetensors and
 *                                  config.json, or the PEFT adapter files) and train_state.bin
 *   DIR/latest                     one line "checkpoint-<step>": the newest complete one
 *   DIR/checkpoint-<step>.tmp/     a checkpoint being written (or left by a crash): ignored
 *
 * Saving step s: (1) DIR/checkpoint-s.tmp/ is created afresh and the weights and the train
 * state are written into it (each file fsync'd), then the directory is fsync'd; (2) it is
 * renamed to DIR/checkpoint-s (when that exists already, e.g. after resuming from an earlier
 * step, the two are exchanged atomically and the old one deleted) and DIR is fsync'd; (3)
 * DIR/latest is replaced atomically (temporary file, fsync, rename, fsync of DIR); (4) only
 * then are older checkpoints pruned: of the complete checkpoints with a step below s the
 * `keep` newest stay, the rest and any *.tmp leftovers are deleted. Checkpoints with a step
 * above s (from a run that was resumed from an earlier one) are left alone.
 *
 * Resuming: checkpoint_find_latest reads DIR/latest; when it is missing, unreadable or names
 * a checkpoint that is not complete, it falls back to the complete checkpoint with the
 * highest step. A checkpoint is complete when DIR/checkpoint-<step> (digits only) is a
 * directory holding train_state.bin. */
#ifndef CK_CHECKPOINT_H
#define CK_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "util/ck_error.h"
#include "formats/hf_config.h"
#include "model/lora.h"
#include "model/model.h"
#include "train/optim.h"
#include "train/train_state.h"

#define CHECKPOINT_STATE_FILE   "train_state.bin"
#define CHECKPOINT_LATEST_FILE  "latest"
#define CHECKPOINT_KEEP_DEFAULT 1 /* previous complete checkpoints kept besides the newest */

/* Writes the weights into the directory dir (which exists and is empty); 0 or -1 with err. */
typedef int (*CheckpointSaveWeights)(void *ctx, const char *dir, CkError *err);

/* Context of checkpoint_save_hf_model. */
typedef struct {
    const Model *model;
    const HfConfig *config;
    const char *command_line; /* may be NULL */
} CheckpointHfModel;

/* A CheckpointSaveWeights for full fine-tuning: hf_model_save in F32 (exact resume needs the
 * fp32 weights). ctx is a CheckpointHfModel *. A model in llama2.c's interleaved rotary order
 * is written in Hugging Face's order; after hf_model_load on resume, model_set_rope_style must
 * restore the interleaved order or the layout fingerprint refuses the train state. */
int checkpoint_save_hf_model(void *ctx, const char *dir, CkError *err);

/* Context of checkpoint_save_peft. */
typedef struct {
    const LoraAdapters *adapters;
    const Model *base;
    const char *base_model_name; /* base_model_name_or_path of adapter_config.json */
    const char *command_line;    /* may be NULL */
} CheckpointPeft;

/* A CheckpointSaveWeights for LoRA: peft_save of the adapters. ctx is a CheckpointPeft *. */
int checkpoint_save_peft(void *ctx, const char *dir, CkError *err);

/* Writes "root/checkpoint-<step>" into buf (size bytes); fails when it does not fit. */
int checkpoint_path(const char *root, int64_t step, char *buf, size_t size, CkError *err);

/* Saves checkpoint ts->step into root (created if missing) by the protocol above: the weights
 * through save_weights(ctx, dir, err) (NULL: none), then ts and opt as train_state.bin; keeps
 * `keep` previous checkpoints (CHECKPOINT_KEEP_DEFAULT; negative: all). On failure before
 * step (2) the .tmp directory is removed and the previous checkpoints are untouched. */
int checkpoint_save(const char *root, int keep, CheckpointSaveWeights save_weights, void *ctx,
                    const TrainState *ts, const TrainLayout *layout, const AdamW *opt,
                    CkError *err);

/* Finds the checkpoint to resume from in root (see above): returns 1 and writes its directory
 * into dir (size bytes) and its step into *step (may be NULL); returns 0 when root holds no
 * complete checkpoint or does not exist; -1 with err when root cannot be read. */
int checkpoint_find_latest(const char *root, char *dir, size_t size, int64_t *step, CkError *err);

#endif
