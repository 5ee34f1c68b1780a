/* schedule.c — see schedule.h. */
#include "train/schedule.h"

#include <math.h>
#include <string.h>

static const char *const kind_names[SCHED_KIND_COUNT] = {"constant", "constant_with_warmup",
                                                         "linear", "cosine"};

Schedule schedule_make(ScheduleKind kind, double lr, int64_t warmup_steps, int64_t total_steps) {
    Schedule s = {kind, lr, warmup_steps, total_steps, 0.5, 1};
    return s;
}

const char *schedule_kind_name(ScheduleKind kind) {
    return (unsigned)kind < SCHED_KIND_COUNT ? kind_names[kind] : "?";
}

int schedule_parse_kind(const char *name, ScheduleKind *kind, CkError *err) {
    for (int k = 0; k < SCHED_KIND_COUNT; k++)
        if (strcmp(name, kind_names[k]) == 0) {
            *kind = (ScheduleKind)k;
            return 0;
        }
    return ck_fail(err,
                   "unknown learning-rate schedule \"%s\" (expected constant, "
                   "constant_with_warmup, linear or cosine)",
                   name);
}

int schedule_validate(const Schedule *s, CkError *err) {
    if ((unsigned)s->kind >= SCHED_KIND_COUNT)
        return ck_fail(err, "invalid learning-rate schedule kind %d", (int)s->kind);
    if (!(s->lr >= 0 && isfinite(s->lr)))
        return ck_fail(err, "the learning rate must be finite and >= 0, not %g", s->lr);
    if (s->warmup_steps < 0)
        return ck_fail(err, "warmup steps must be >= 0, not %lld", (long long)s->warmup_steps);
    if (s->kind == SCHED_LINEAR || s->kind == SCHED_COSINE) {
        /* W > T is valid, as in transformers: the whole run is then warmup */
        if (s->total_steps < 1)
            return ck_fail(err, "the %s schedule needs the number of training steps (>= 1)",
                           kind_names[s->kind]);
    }
    if (s->kind == SCHED_COSINE && !(s->num_cycles > 0 && isfinite(s->num_cycles)))
        return ck_fail(err, "cosine num_cycles must be positive, not %g", s->num_cycles);
    if (s->first_step_lr_zero != 0 && s->first_step_lr_zero != 1)
        return ck_fail(err, "first_step_lr_zero must be 0 or 1");
    return 0;
}

/* max(1, n) as a double, the denominator transformers uses against division by zero */
static double at_least_one(int64_t n) {
    return n > 1 ? (double)n : 1.0;
}

double schedule_lambda(const Schedule *s, int64_t t) {
    const int64_t W = s->warmup_steps, T = s->total_steps;
    if (s->kind == SCHED_CONSTANT) return 1.0;
    if (t < W) return (double)t / at_least_one(W);
    switch (s->kind) {
    case SCHED_CONSTANT_WITH_WARMUP:
        return 1.0;
    case SCHED_LINEAR: {
        const double r = (double)(T - t) / at_least_one(T - W);
        return r > 0.0 ? r : 0.0;
    }
    case SCHED_COSINE: {
        const double progress = (double)(t - W) / at_least_one(T - W);
        const double r = 0.5 * (1.0 + cos(M_PI * s->num_cycles * 2.0 * progress));
        return r > 0.0 ? r : 0.0;
    }
    default:
        return 1.0;
    }
}

double schedule_lr(const Schedule *s, int64_t done) {
    return s->lr * schedule_lambda(s, s->first_step_lr_zero ? done : done + 1);
}
