/* cmd_eval_winrate.c — `cutkit eval winrate`: win rates, standard errors and length-controlled win
 * rates. (Placeholder until it lands.) */
#include <stdio.h>

#include "commands.h"

static const CommandSpec SPEC = {"eval winrate",
                                 "win rates, standard errors and length-controlled win rates",
                                 "",
                                 NULL,
                                 NULL,
                                 0};

const CommandSpec *cmd_eval_winrate_spec(void) {
    return &SPEC;
}

int cmd_eval_winrate(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "cutkit eval winrate: not built yet\n");
    return 2;
}
