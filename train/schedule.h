/* schedule.h — learning-rate schedules with warmup, as Hugging Face transformers defines them.
 *
 * Each kind is a multiplier lambda(t) of the peak learning rate, t >= 0, with W warmup steps
 * and T training steps (formulas of get_*_schedule_with_warmup; divisions in double):
 *   constant:              1
 *   constant_with_warmup:  t < W ? t / max(1, W) : 1
 *   linear:                t < W ? t / max(1, W) : max(0, (T - t) / max(1, T - W))
 *   cosine:                t < W ? t / max(1, W)
 *                                : max(0, 0.5 (1 + cos(pi * 2 * num_cycles * progress)))
 *                          with progress = (t - W) / max(1, T - W) and num_cycles 0.5
 * As in transformers, nothing clamps t to T: past T the linear multiplier stays 0 and the
 * cosine one rises again, so a trainer must stop at T. Nor is W bounded by T: with W > T
 * every step of the run is in warmup, lambda(t) = t / W, so the lr never reaches its peak
 * (the reference's online runs: about 45 updates under W = 100 end at lambda(44) = 0.44).
 *
 * Which lambda an optimizer step uses. Transformers wraps lambda in torch's LambdaLR, which
 * sets lr = peak * lambda(0) when it is created; the training loop then calls
 * optimizer.step() before scheduler.step(), so the k-th update (k = 1, 2, ...) uses
 * lambda(k - 1): with warmup the first update has lr 0 (the moments still learn from its
 * gradient; the weights do not move), and the last of T updates uses lambda(T - 1) > 0.
 * first_step_lr_zero = 1 (the default) reproduces that step for step. With 0, update k uses
 * lambda(k) instead: no wasted first update, but the last of T updates then uses lambda(T),
 * which is 0 for linear and cosine. */
#ifndef CK_SCHEDULE_H
#define CK_SCHEDULE_H

#include <stdint.h>

#include "util/ck_error.h"

typedef enum {
    SCHED_CONSTANT = 0,
    SCHED_CONSTANT_WITH_WARMUP = 1,
    SCHED_LINEAR = 2,
    SCHED_COSINE = 3,
    SCHED_KIND_COUNT
} ScheduleKind;

typedef struct {
    ScheduleKind kind;
    double lr;              /* peak learning rate */
    int64_t warmup_steps;   /* W >= 0 */
    int64_t total_steps;    /* T: num_training_steps (linear and cosine need T >= 1) */
    double num_cycles;      /* cosine only: 0.5 is a half wave from peak to 0 */
    int first_step_lr_zero; /* 1: update k uses lambda(k - 1), as HF; 0: lambda(k) */
} Schedule;

/* Returns a schedule of kind with peak lr, W and T, num_cycles 0.5 and first_step_lr_zero 1. */
Schedule schedule_make(ScheduleKind kind, double lr, int64_t warmup_steps, int64_t total_steps);

/* Returns the transformers name of a kind ("constant", "constant_with_warmup", "linear",
 * "cosine"), or "?" for an invalid value. */
const char *schedule_kind_name(ScheduleKind kind);

/* Parses a kind by its transformers name; an unknown name fails listing the valid ones. */
int schedule_parse_kind(const char *name, ScheduleKind *kind, CkError *err);

/* Checks a schedule: known kind, finite lr >= 0, 0 <= W (any W, also W > T), T >= 1 for
 * linear and cosine; num_cycles finite and > 0 for cosine; first_step_lr_zero 0 or 1. */
int schedule_validate(const Schedule *s, CkError *err);

/* Returns lambda(t), the multiplier of the peak lr at scheduler step t (LambdaLR's
 * last_epoch), exactly as transformers' lr_lambda computes it. */
double schedule_lambda(const Schedule *s, int64_t t);

/* Returns the learning rate of the optimizer update that follows `done` completed updates
 * (done = AdamW.step before the update): lr * lambda(done) when first_step_lr_zero, else
 * lr * lambda(done + 1). */
double schedule_lr(const Schedule *s, int64_t done);

#endif
