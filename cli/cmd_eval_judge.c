/* cmd_eval_judge.c — `cutkit eval judge`: pairwise judging into AlpacaEval annotations.json.
 * (Placeholder until it lands.) */
#include <stdio.h>

#include "commands.h"

static const CommandSpec SPEC = {
    "eval judge", "pairwise judging into AlpacaEval annotations.json", "", NULL, NULL, 0};

const CommandSpec *cmd_eval_judge_spec(void) {
    return &SPEC;
}

int cmd_eval_judge(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "cutkit eval judge: not built yet\n");
    return 2;
}
