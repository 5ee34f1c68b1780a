/* test_schedule.c — the learning-rate schedules against values computed by hand from
 * transformers' formulas, and the first-step semantics (HF's lr 0 versus starting at
 * lambda(1)). */
#include <math.h>
#include <stdio.h>
#include <string.h>

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
    s = schedule_make(SCHED_LINEAR, 1e-3, 20, 10);
    assert_int_equal(schedule_validate(&s, &err), -1);
    assert_string_equal(err.msg, "warmup steps (20) exceed the training steps (10)");
    s = schedule_make(SCHED_LINEAR, -1e-3, 0, 10);
    assert_int_equal(schedule_validate(&s, &err), -1);
    assert_string_equal(err.msg, "the learning rate must be finite and >= 0, not -0.001");
    s = schedule_make(SCHED_CONSTANT_WITH_WARMUP, 1e-3, -1, 10);
    assert_int_equal(schedule_validate(&s, &err), -1);
    assert_string_equal(err.msg, "warmup steps must be >= 0, not -1");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cosine_with_warmup),
        cmocka_unit_test(test_linear_with_warmup),
        cmocka_unit_test(test_constant),
        cmocka_unit_test(test_names_and_validation),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
