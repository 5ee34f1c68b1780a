/* test_sampler.c — greedy decoding's argmax (model/sampler.h) against its definition: the
 * strict first-max scan of llama2.c's run.c (sample_argmax: an index replaces the best only
 * when its value is strictly greater), which sampler_argmax finds in registers. Lengths
 * around every register width, ties, NaNs (never a maximum, except one at index 0, which the
 * scan never leaves), infinities and signed zeros. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "model/sampler.h"

static int first_max_scan(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static uint64_t next_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A value from a small set, so that ties are common, with the awkward ones mixed in. */
static float draw(uint64_t *s) {
    static const float SPECIAL[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-30f, -1e30f};
    const uint64_t r = next_u64(s);
    if (r % 16 == 0) return SPECIAL[(r >> 8) % (sizeof SPECIAL / sizeof SPECIAL[0])];
    return (float)((int)((r >> 16) % 9) - 4) * 0.25f;
}

static void test_argmax_is_the_first_max_scan(void **state) {
    (void)state;
    uint64_t seed = 7;
    float v[200];
    for (int n = 1; n <= 200; n++)
        for (int trial = 0; trial < 40; trial++) {
            for (int i = 0; i < n; i++) v[i] = draw(&seed);
            assert_int_equal(sampler_argmax(v, n), first_max_scan(v, n));
        }
}

static void test_argmax_edge_cases(void **state) {
    (void)state;
    float v[64];
    for (int i = 0; i < 64; i++) v[i] = -INFINITY;
    assert_int_equal(sampler_argmax(v, 64), 0); /* nothing is greater than the first */
    v[0] = NAN;
    v[40] = 3.0f;
    assert_int_equal(sampler_argmax(v, 64), 0); /* the scan never leaves a NaN at 0 */
    v[0] = 1.0f;
    v[17] = NAN;
    assert_int_equal(sampler_argmax(v, 64), 40); /* a NaN elsewhere is never the maximum */
    v[63] = 3.0f;
    assert_int_equal(sampler_argmax(v, 64), 40); /* ties: the first */
    v[5] = -0.0f;
    v[40] = 0.0f;
    v[63] = 0.0f;
    assert_int_equal(sampler_argmax(v, 64), 0); /* 1.0 at 0 */
    v[0] = -1.0f;
    assert_int_equal(sampler_argmax(v, 64), 5); /* -0 == +0: the first zero */
}

static void test_greedy_sampler_takes_argmax(void **state) {
    (void)state;
    Sampler s;
    CkError err = {0};
    float logits[100];
    uint64_t seed = 11;
    assert_int_equal(sampler_init(&s, 100, 0.0f, 1.0f, 1, &err), 0);
    for (int trial = 0; trial < 20; trial++) {
        for (int i = 0; i < 100; i++) logits[i] = draw(&seed);
        const int want = first_max_scan(logits, 100);
        assert_int_equal(sampler_sample(&s, logits), want);
    }
    sampler_free(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_argmax_is_the_first_max_scan),
        cmocka_unit_test(test_argmax_edge_cases),
        cmocka_unit_test(test_greedy_sampler_takes_argmax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
