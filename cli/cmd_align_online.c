/* cmd_align_online.c — `cutkit align-online`: online CUT: generate, judge, train, merge; iterate.
 * (Placeholder until it lands.) */
#include <stdio.h>

#include "commands.h"

static const CommandSpec SPEC = {
    "align-online", "online CUT: generate, judge, train, merge; iterate", "", NULL, NULL, 0};

const CommandSpec *cmd_align_online_spec(void) {
    return &SPEC;
}

int cmd_align_online(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "cutkit align-online: not built yet\n");
    return 2;
}
