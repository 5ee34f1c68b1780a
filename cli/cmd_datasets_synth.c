/* cmd_datasets_synth.c — `cutkit datasets synth`: write the synthetic judgment world (train/test
 * JSONL with error spans). (Placeholder until it lands.) */
#include <stdio.h>

#include "commands.h"

static const CommandSpec SPEC = {
    "datasets synth",
    "write the synthetic judgment world (train/test JSONL with error spans)",
    "",
    NULL,
    NULL,
    0};

const CommandSpec *cmd_datasets_synth_spec(void) {
    return &SPEC;
}

int cmd_datasets_synth(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "cutkit datasets synth: not built yet\n");
    return 2;
}
