/* cmd_eval_mc.c — `cutkit eval mc`: multiple-choice scoring: ARC, TruthfulQA MC1/MC2 as
 * lm-evaluation-harness. (Placeholder until it lands.) */
#include <stdio.h>

#include "commands.h"

static const CommandSpec SPEC = {
    "eval mc", "multiple-choice scoring: ARC, TruthfulQA MC1/MC2 as lm-evaluation-harness",
    "",        NULL,
    NULL,      0};

const CommandSpec *cmd_eval_mc_spec(void) {
    return &SPEC;
}

int cmd_eval_mc(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "cutkit eval mc: not built yet\n");
    return 2;
}
