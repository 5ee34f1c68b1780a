/* judge_synth.c — the synthetic judgment world's rule-based judge as a pairwise judge: the
 * output with fewer wrong facts (datasets/synth.h) wins; equal counts are a draw. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/judge.h"
#include "datasets/synth.h"

static int synth_judge(void *ctx, const char *instruction, const char *output_1,
                       const char *output_2, double *preference, char **raw, CkError *err) {
    (void)ctx;
    int e1 = 0, e2 = 0;
    if (synth_count_errors(instruction, output_1, &e1, err) != 0 ||
        synth_count_errors(instruction, output_2, &e2, err) != 0)
        return -1;
    *preference = e1 < e2 ? 1 : (e1 > e2 ? 2 : 1.5);
    char buf[64];
    snprintf(buf, sizeof buf, "{\"errors_1\":%d,\"errors_2\":%d}", e1, e2);
    *raw = strdup(buf);
    return *raw ? 0 : ck_fail(err, "out of memory");
}

int judge_synth_create(Judge *j, CkError *err) {
    (void)err;
    memset(j, 0, sizeof *j);
    snprintf(j->name, sizeof j->name, "synth_rules");
    j->judge = synth_judge;
    return 0;
}
