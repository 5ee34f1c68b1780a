/* cmd_eval_generate.c — `cutkit eval generate`: generate responses in AlpacaEval model_outputs.json
 * format. (Placeholder until it lands.) */
#include <stdio.h>

#include "commands.h"

static const CommandSpec SPEC = {"eval generate",
                                 "generate responses in AlpacaEval model_outputs.json format",
                                 "",
                                 NULL,
                                 NULL,
                                 0};

const CommandSpec *cmd_eval_generate_spec(void) {
    return &SPEC;
}

int cmd_eval_generate(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "cutkit eval generate: not built yet\n");
    return 2;
}
