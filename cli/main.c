/* main.c — `cutkit COMMAND [FLAGS]`: git-style dispatch, help, version. The only place,
 * with the cmd_* files, that prints usage or exits. */
#include <stdio.h>
#include <string.h>

#include "blas_env.h"
#include "commands.h"

static const Command COMMANDS[] = {
    {cmd_generate_spec, cmd_generate}, {cmd_tokenize_spec, cmd_tokenize},
    {cmd_convert_spec, cmd_convert},   {cmd_train_spec, cmd_train},
    {cmd_merge_spec, cmd_merge},       {cmd_score_spec, cmd_score},
};
#define N_COMMANDS (int)(sizeof COMMANDS / sizeof COMMANDS[0])

static void print_overview(FILE *out) {
    fprintf(out,
            "cutkit %s — aligning language models with judgments (CUT), on the CPU\n\n"
            "usage: cutkit COMMAND [FLAGS]\n\ncommands:\n",
            CUTKIT_VERSION);
    for (int i = 0; i < N_COMMANDS; i++) {
        const CommandSpec *s = COMMANDS[i].spec();
        fprintf(out, "  %-12s %s\n", s->name, s->summary);
    }
    fprintf(out, "  %-12s %s\n", "help", "show this list, or the flags of one command");
    fprintf(out, "\nRun 'cutkit help COMMAND' for a command's flags and their defaults.\n");
}

static const Command *find_command(const char *name) {
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(COMMANDS[i].spec()->name, name)) return &COMMANDS[i];
    return NULL;
}

int main(int argc, char **argv) {
    blas_env_ensure(argv);
    if (argc < 2) {
        print_overview(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "help") || !strcmp(name, "--help") || !strcmp(name, "-h")) {
        if (argc < 3) {
            print_overview(stdout);
            return 0;
        }
        const Command *c = find_command(argv[2]);
        if (!c) {
            fprintf(stderr, "cutkit: unknown command '%s' (see 'cutkit help')\n", argv[2]);
            return 2;
        }
        flags_print_help(c->spec(), stdout);
        return 0;
    }
    if (!strcmp(name, "version") || !strcmp(name, "--version")) {
        printf("cutkit %s\n", CUTKIT_VERSION);
        return 0;
    }
    const Command *c = find_command(name);
    if (!c) {
        fprintf(stderr, "cutkit: unknown command '%s' (see 'cutkit help')\n", name);
        return 2;
    }
    return c->run(argc - 2, argv + 2);
}
