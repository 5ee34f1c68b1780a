/* train_state.h — the train state file: everything besides the weights that a training run
 * needs to continue bit for bit where it stopped.
 *
 * File format (little endian, version 1):
 *   offset 0   8 bytes  magic "CKTSTATE"
 *          8   u32      version (1)
 *         12   u32      0 (reserved)
 *         16   u64      total file size in bytes
 *         24   u64      FNV-1a 64 (util/hash.h) of bytes [32, total): everything after it
 *         32   u64      layout fingerprint (TrainLayout.hash)
 *         40   u64      n: floats in the parameter buffer (and in m and v)
 *         48   i64      step, i64 epoch
 *         64   schedule: u32 kind, u32 first_step_lr_zero, f64 lr, i64 warmup_steps,
 *                        i64 total_steps, f64 num_cycles                      (40 bytes)
 *        104   AdamW:    f64 beta1, beta2, eps, weight_decay, i64 step        (40 bytes)
 *        144   u32 layout description length D, u32 decay segments S, u32 RNGs R,
 *              u32 cursor length C
 *        160   D bytes of description, zero-padded to a multiple of 8
 *              S x (u64 begin, u64 end, u64 decay)
 *              R x 4 u64 (xoshiro256** words)
 *              C x i64 (the data cursor)
 *              n f32 (m), n f32 (v)
 * The loader checks magic, version, the size against the file's, the checksum, every count
 * against the bytes that remain, and the layout against the run's, refusing with a message;
 * it never reads outside the file. */
#ifndef CK_TRAIN_STATE_H
#define CK_TRAIN_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "util/ck_error.h"
#include "model/lora.h"
#include "model/model.h"
#include "train/optim.h"
#include "util/rng.h"
#include "train/schedule.h"

enum {
    TRAIN_STATE_VERSION = 1,
    TRAIN_STATE_MAX_RNGS = 16,    /* random streams a trainer may save */
    TRAIN_STATE_MAX_CURSOR = 256, /* int64 words of data cursor */
};

/* What the optimizer's buffer is the state of: a fingerprint of the parameter layout (names,
 * offsets and sizes of the tensors, the configuration that shapes them) and a description
 * for messages, so that resuming onto another model or adapter shape is refused clearly. */
typedef struct {
    uint64_t hash;
    size_t n_params;
    char desc[200];
} TrainLayout;

/* Describes the parameter buffer of m (full fine-tuning); the rotary convention is part of
 * it, since a model saved in Hugging Face's order and reloaded has its q/k rows permuted
 * relative to the moments. */
void train_layout_model(TrainLayout *l, const Model *m);

/* Describes the buffer of the adapters ad (LoRA training). */
void train_layout_lora(TrainLayout *l, const LoraAdapters *ad);

/* The trainer's own part of the state; the optimizer's (step, hyperparameters, decay
 * segments, m, v) comes from the AdamW given to save and load. */
typedef struct {
    int64_t step;  /* optimizer updates completed */
    int64_t epoch; /* passes over the data completed */
    Schedule schedule;
    int n_rngs; /* <= TRAIN_STATE_MAX_RNGS */
    Rng rngs[TRAIN_STATE_MAX_RNGS];
    int n_cursor;                           /* <= TRAIN_STATE_MAX_CURSOR */
    int64_t cursor[TRAIN_STATE_MAX_CURSOR]; /* opaque to this module: the trainer's position */
} TrainState;

/* Writes ts and opt (sized for layout) to path atomically (an AtomicFile: a crash leaves the
 * old file or the complete new one); fails with err naming path. */
int train_state_save(const char *path, const TrainState *ts, const TrainLayout *layout,
                     const AdamW *opt, CkError *err);

/* Reads the file at path into ts and opt, which must already be initialised (adamw_init) for
 * layout->n_params floats: opt's hyperparameters, step, decay segments, m and v are replaced
 * by the saved ones, as torch's load_state_dict does. Truncated, corrupt or foreign files, and
 * files saved for another layout, are refused with a message naming path; on failure ts and
 * opt are unchanged. */
int train_state_load(const char *path, TrainState *ts, const TrainLayout *layout, AdamW *opt,
                     CkError *err);

/* train_state_load on the file's bytes already in memory (data, size bytes; data may be NULL
 * when size is 0); path names it in messages. Counters beyond 2^53 (step, epoch, the
 * optimizer's step, the schedule's steps) are refused as corrupt. */
int train_state_read(const void *data, size_t size, const char *path, TrainState *ts,
                     const TrainLayout *layout, AdamW *opt, CkError *err);

#endif
