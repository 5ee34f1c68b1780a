/* judge_synth.c — the synthetic judgment world's rule-based judge as a pairwise judge. It is
 * built only when datasets/synth.h exists (written beside this module), so the build works
 * before and after it lands. */
#include <stdio.h>
#include <string.h>

#include "judge.h"

#if defined(__has_include)
#if __has_include("synth.h")
#include "synth.h"
#define CK_HAVE_SYNTH 1
#endif
#endif

#ifdef CK_HAVE_SYNTH
#include <stdlib.h>

static int synth_judge(void *ctx, const char *instruction, const char *output_1,
                       const char *output_2, double *preference, char **raw, CkError *err) {
    (void)ctx;
    int e1 = 0, e2 = 0;
    if (synth_count_errors(instruction, output_1, &e1, err) != 0 ||
        synth_count_errors(instruction, output_2, &e2, err) != 0)
        return -1;
    *preference = e1 < e2 ? 1 : (e1 > e2 ? 2 : 1.5); /* fewer errors wins */
    char buf[64];
    snprintf(buf, sizeof buf, "{\"errors_1\":%d,\"errors_2\":%d}", e1, e2);
    *raw = malloc(strlen(buf) + 1);
    if (!*raw) return ck_fail(err, "out of memory");
    strcpy(*raw, buf);
    return 0;
}

int judge_synth_create(Judge *j, CkError *err) {
    (void)err;
    memset(j, 0, sizeof *j);
    snprintf(j->name, sizeof j->name, "synth_rules");
    j->judge = synth_judge;
    return 0;
}
#else
int judge_synth_create(Judge *j, CkError *err) {
    memset(j, 0, sizeof *j);
    return ck_fail(err, "the synthetic-world judge is not built (datasets/synth.h was absent "
                        "when cutkit was compiled)");
}
#endif
