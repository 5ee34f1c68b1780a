/* test_schedule.c — the learning-rate schedules against values computed by hand from
 * transformers' formulas and against torch's LambdaLR at test time, the first-step semantics
 * (HF's lr 0 versus starting at lambda(1)), and warmup longer than the run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/test_util.h"

#include "train/schedule.h"

#define TOL 1e-15

static void test_cosine_with_warmup(void **state) {
    (void)state;
    /* W = 100 of T = 1000; lambda values by hand: warmup t / 100, then
     * 0.5 (1 + cos(pi (t - 100) / 900)) */
    Schedule s = schedule_make(SCHED_COSINE, 1.0, 100, 1000);
    CkError err = {{0}};
    assert_int_equal(schedule_validate(&s, &err), 0);
    assert_true(schedule_lambda(&s, 0) == 0.0);
    assert_close(schedule_lambda(&s, 1), 0.01, TOL);
    assert_close(schedule_lambda(&s, 2), 0.02, TOL);
    assert_close(schedule_lambda(&s, 50), 0.5, TOL);
    assert_close(schedule_lambda(&s, 99), 0.99, TOL);
    assert_true(schedule_lambda(&s, 100) == 1.0);
    /* 0.5 (1 + cos(pi / 900)); the long values below are the formula evaluated in Python */
    assert_close(schedule_lambda(&s, 101), 0.9999969538288952, TOL);
    assert_close(schedule_lambda(&s, 325), 0.8535533905932737, TOL); /* quarter: cos(pi/4) */
    assert_close(schedule_lambda(&s, 550), 0.5, TOL);
    /* the last step of HF's loop uses lambda(999) = 0.5 (1 - cos(pi / 900)) = 3.0462e-6 */
    assert_close(schedule_lambda(&s, 999), 3.046171104803541e-06, 1e-18);
    assert_close(schedule_lambda(&s, 1000), 0, TOL);
    /* past T transformers does not clamp: the cosine rises again */
    assert_close(schedule_lambda(&s, 1900), 1.0, TOL);

    /* lr of the updates: HF's first update has lr 0, the k-th uses lambda(k - 1) */
    s.lr = 3e-4;
    assert_true(schedule_lr(&s, 0) == 0.0);
    assert_close(schedule_lr(&s, 1), 3e-6, 1e-20);
    assert_close(schedule_lr(&s, 999), 3e-4 * 3.046171104803541e-06, 1e-18);
    /* shifted: the first update uses lambda(1), the last of T uses lambda(T) = 0 */
    s.first_step_lr_zero = 0;
    assert_close(schedule_lr(&s, 0), 3e-6, 1e-20);
    assert_close(schedule_lr(&s, 998), 3e-4 * 3.046171104803541e-06, 1e-18);
    assert_close(schedule_lr(&s, 999), 0, 1e-20);
}

static void test_linear_with_warmup(void **state) {
    (void)state;
    Schedule s = schedule_make(SCHED_LINEAR, 2.0, 10, 100);
    assert_true(schedule_lambda(&s, 0) == 0.0);
    assert_true(schedule_lambda(&s, 5) == 0.5);
    assert_true(schedule_lambda(&s, 10) == 1.0);
    assert_true(schedule_lambda(&s, 55) == 0.5);      /* 45 / 90 */
    assert_true(schedule_lambda(&s, 91) == 0.1);      /* 9 / 90 */
    assert_true(schedule_lambda(&s, 99) == 1.0 / 90); /* the last step HF takes */
    assert_true(schedule_lambda(&s, 100) == 0.0);
    assert_true(schedule_lambda(&s, 150) == 0.0); /* clamped at 0 */
    assert_true(schedule_lr(&s, 0) == 0.0);
    assert_true(schedule_lr(&s, 55) == 1.0);
    /* no warmup: the first update already has the peak */
    s = schedule_make(SCHED_LINEAR, 1.0, 0, 4);
    assert_true(schedule_lr(&s, 0) == 1.0);
    assert_true(schedule_lr(&s, 1) == 0.75);
    assert_true(schedule_lr(&s, 3) == 0.25);
}

static void test_constant(void **state) {
    (void)state;
    Schedule s = schedule_make(SCHED_CONSTANT, 5e-5, 0, 0);
    CkError err = {{0}};
    assert_int_equal(schedule_validate(&s, &err), 0); /* needs no T */
    for (int t = 0; t < 5; t++) assert_true(schedule_lr(&s, t) == 5e-5);
    /* constant ignores warmup, as get_constant_schedule does */
    s.warmup_steps = 10;
    assert_true(schedule_lr(&s, 0) == 5e-5);

    s = schedule_make(SCHED_CONSTANT_WITH_WARMUP, 1.0, 4, 0);
    assert_int_equal(schedule_validate(&s, &err), 0);
    const double want[6] = {0, 0.25, 0.5, 0.75, 1, 1};
    for (int t = 0; t < 6; t++) assert_true(schedule_lambda(&s, t) == want[t]);
    s.first_step_lr_zero = 0;
    assert_true(schedule_lr(&s, 0) == 0.25);
    assert_true(schedule_lr(&s, 3) == 1.0);
}

static void test_names_and_validation(void **state) {
    (void)state;
    CkError err = {{0}};
    ScheduleKind k;
    for (int i = 0; i < SCHED_KIND_COUNT; i++) {
        assert_int_equal(schedule_parse_kind(schedule_kind_name((ScheduleKind)i), &k, &err), 0);
        assert_int_equal(k, i);
    }
    assert_string_equal(schedule_kind_name(SCHED_COSINE), "cosine");
    assert_int_equal(schedule_parse_kind("cosine_with_restarts", &k, &err), -1);
    assert_string_equal(err.msg, "unknown learning-rate schedule \"cosine_with_restarts\" "
                                 "(expected constant, constant_with_warmup, linear or cosine)");
    Schedule s = schedule_make(SCHED_COSINE, 1e-3, 10, 0);
    assert_int_equal(schedule_validate(&s, &err), -1);
    assert_string_equal(err.msg, "the cosine schedule needs the number of training steps (>= 1)");
    s = schedule_make(SCHED_LINEAR, 1e-3, 20, 10); /* W > T is valid (see below) */
    assert_int_equal(schedule_validate(&s, &err), 0);
    s = schedule_make(SCHED_LINEAR, -1e-3, 0, 10);
    assert_int_equal(schedule_validate(&s, &err), -1);
    assert_string_equal(err.msg, "the learning rate must be finite and >= 0, not -0.001");
    s = schedule_make(SCHED_CONSTANT_WITH_WARMUP, 1e-3, -1, 10);
    assert_int_equal(schedule_validate(&s, &err), -1);
    assert_string_equal(err.msg, "warmup steps must be >= 0, not -1");
}

/* Warmup longer than the run, as transformers allows: every update is in warmup. The
 * reference's online iteration 1 (cut-spec §3.1): 45 updates of peak 4e-4 under W = 100, so
 * update k uses lambda(k - 1) = (k - 1) / 100 and the last has lr 4e-4 x 0.44 = 1.76e-4. */
static void test_warmup_beyond_total(void **state) {
    (void)state;
    CkError err = {{0}};
    for (int kind = SCHED_CONSTANT_WITH_WARMUP; kind <= SCHED_COSINE; kind++) {
        Schedule s = schedule_make((ScheduleKind)kind, 4e-4, 100, 45);
        assert_int_equal(schedule_validate(&s, &err), 0);
        assert_true(schedule_lr(&s, 0) == 0.0);
        assert_close(schedule_lr(&s, 1), 4e-6, 1e-20);
        assert_close(schedule_lr(&s, 44), 1.76e-4, 1e-18);
        for (int t = 0; t < 100; t++) assert_close(schedule_lambda(&s, t), t / 100.0, 1e-16);
    }
    /* at and past W the formulas go on with max(1, T - W) = 1 as the denominator, as
     * transformers' do (a trainer never gets there: it stops at T) */
    Schedule s = schedule_make(SCHED_COSINE, 1.0, 100, 45);
    assert_true(schedule_lambda(&s, 100) == 1.0);       /* progress 0 */
    assert_close(schedule_lambda(&s, 101), 0.0, 1e-16); /* progress 1: cos(pi) */
    assert_close(schedule_lambda(&s, 102), 1.0, 1e-16); /* progress 2: cos(2 pi) */
    s = schedule_make(SCHED_LINEAR, 1.0, 100, 45);
    assert_true(schedule_lambda(&s, 100) == 0.0); /* max(0, (45 - 100) / 1) */
    s = schedule_make(SCHED_CONSTANT_WITH_WARMUP, 1.0, 100, 45);
    assert_true(schedule_lambda(&s, 100) == 1.0);
    /* the shifted order: update k uses lambda(k) */
    s = schedule_make(SCHED_COSINE, 4e-4, 100, 45);
    s.first_step_lr_zero = 0;
    assert_close(schedule_lr(&s, 0), 4e-6, 1e-20);
    assert_close(schedule_lr(&s, 44), 1.8e-4, 1e-18);
}

/* Python (Debian's python3-torch): torch's LambdaLR driven as the Trainer drives it
 * (optimizer.step() then scheduler.step()), with transformers' three warmup lambdas written
 * from their definitions; prints "KIND W T lr_1 ... lr_T", the lr of every update. */
static const char *TORCH_SCHEDULES =
    "import math, sys\n"
    "import torch\n"
    "def warm(W, t):\n"
    "    return float(t) / float(max(1, W))\n"
    "def constant_with_warmup(W, T):\n"
    "    return lambda t: warm(W, t) if t < W else 1.0\n"
    "def linear(W, T):\n"
    "    return lambda t: warm(W, t) if t < W else max(0.0, float(T - t) / float(max(1, T - W)))\n"
    "def cosine(W, T):\n"
    "    def f(t):\n"
    "        if t < W:\n"
    "            return warm(W, t)\n"
    "        progress = float(t - W) / float(max(1, T - W))\n"
    "        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))\n"
    "    return f\n"
    "KINDS = {'constant_with_warmup': constant_with_warmup, 'linear': linear, 'cosine': cosine}\n"
    "for kind in KINDS:\n"
    "    for W, T in [(0, 7), (3, 10), (10, 10), (100, 45), (12, 5), (1, 1)]:\n"
    "        p = torch.nn.Parameter(torch.zeros(1))\n"
    "        opt = torch.optim.SGD([p], lr=4e-4)\n"
    "        sched = torch.optim.lr_scheduler.LambdaLR(opt, KINDS[kind](W, T))\n"
    "        lrs = []\n"
    "        for k in range(T):\n"
    "            lrs.append(opt.param_groups[0]['lr'])\n"
    "            opt.step()\n"
    "            sched.step()\n"
    "        print(kind, W, T, ' '.join(repr(x) for x in lrs))\n";

static void test_schedules_match_torch(void **state) {
    (void)state;
    if (access("/usr/bin/python3", X_OK) != 0) {
        test_missing_reference("/usr/bin/python3 (with python3-torch) is absent");
        skip();
    }
    char *dir = test_temp_dir(), script[600];
    snprintf(script, sizeof script, "%s/schedules.py", dir);
    assert_int_equal(test_write_file(script, TORCH_SCHEDULES, strlen(TORCH_SCHEDULES)), 0);
    char cmd[700], *out = NULL, *errout = NULL;
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s'", script);
    const int status = test_run(cmd, &out, &errout);
    test_remove_dir(dir);
    free(dir);
    if (status != 0) {
        printf("%s", errout ? errout : "");
        free(out);
        free(errout);
        test_missing_reference("python3-torch did not run");
        skip();
    }
    int lines = 0, updates = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        char name[32];
        long long W, T;
        int used;
        assert_int_equal(sscanf(line, "%31s %lld %lld%n", name, &W, &T, &used), 3);
        ScheduleKind kind;
        CkError err = {{0}};
        assert_int_equal(schedule_parse_kind(name, &kind, &err), 0);
        Schedule s = schedule_make(kind, 4e-4, W, T);
        assert_int_equal(schedule_validate(&s, &err), 0);
        char *p = line + used;
        for (long long k = 0; k < T; k++) {
            char *end;
            const double want = strtod(p, &end);
            assert_true(end != p);
            p = end;
            assert_close(schedule_lr(&s, k), want, 1e-19);
            updates++;
        }
        lines++;
    }
    printf("torch LambdaLR: %d schedules, %d updates, every lr equal\n", lines, updates);
    assert_int_equal(lines, 18);
    free(out);
    free(errout);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cosine_with_warmup),
        cmocka_unit_test(test_linear_with_warmup),
        cmocka_unit_test(test_constant),
        cmocka_unit_test(test_names_and_validation),
        cmocka_unit_test(test_warmup_beyond_total),
        cmocka_unit_test(test_schedules_match_torch),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
