/* cmd_contrast.c — `cutkit contrast`: per-token contrasts. (Placeholder until it lands.) */
#include <stdio.h>

#include "commands.h"

static const CommandSpec SPEC = {
    "contrast", "per-token log pA / log pM contrasts of judgment data, CSV and heatmaps",
    "",         NULL,
    NULL,       0};

const CommandSpec *cmd_contrast_spec(void) {
    return &SPEC;
}

int cmd_contrast(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "cutkit contrast: not built yet\n");
    return 2;
}
