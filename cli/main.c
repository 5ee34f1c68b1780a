/* main.c — `cutkit COMMAND [FLAGS]`: git-style dispatch, help, version. The only place,
 * with the cmd_* files, that prints usage or exits. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "model/blas_env.h"
#include "cli/commands.h"
#include "util/parentdeath.h"
#include "util/threads.h"

/* one command a line */
/* clang-format off */
static const Command COMMANDS[] = {
    {cmd_generate_spec, cmd_generate},
    {cmd_tokenize_spec, cmd_tokenize},
    {cmd_convert_spec, cmd_convert},
    {cmd_train_spec, cmd_train},
    {cmd_merge_spec, cmd_merge},
    {cmd_refine_spec, cmd_refine},
    {cmd_score_spec, cmd_score},
    {cmd_datasets_synth_spec, cmd_datasets_synth},
    {cmd_eval_mc_spec, cmd_eval_mc},
    {cmd_eval_generate_spec, cmd_eval_generate},
    {cmd_eval_judge_spec, cmd_eval_judge},
    {cmd_eval_winrate_spec, cmd_eval_winrate},
    {cmd_eval_rouge_spec, cmd_eval_rouge},
    {cmd_align_online_spec, cmd_align_online},
    {cmd_sweep_spec, cmd_sweep},
    {cmd_report_spec, cmd_report},
    {cmd_contrast_spec, cmd_contrast},
    {cmd_demo_spec, cmd_demo},
};
/* clang-format on */
#define N_COMMANDS (int)(sizeof COMMANDS / sizeof COMMANDS[0])

static void print_overview(FILE *out) {
    fprintf(out,
            "cutkit %s — aligning language models with judgments (CUT), on the CPU\n\n"
            "usage: cutkit COMMAND [FLAGS]\n\ncommands:\n",
            CUTKIT_VERSION);
    for (int i = 0; i < N_COMMANDS; i++) {
        const CommandSpec *s = COMMANDS[i].spec();
        fprintf(out, "  %-16s %s\n", s->name, s->summary);
    }
    fprintf(out, "  %-16s %s\n", "help", "show this list, or the flags of one command");
    fprintf(out, "\nRun 'cutkit help COMMAND' for a command's flags and their defaults.\n");
}

/* Finds the command named by argv[0], or by argv[0] and argv[1] for the two-word commands
 * ("eval mc"); *used is how many arguments the name took. */
static const Command *find_command(int argc, char **argv, int *used) {
    for (int i = 0; i < N_COMMANDS; i++) {
        const char *name = COMMANDS[i].spec()->name;
        const char *space = strchr(name, ' ');
        if (!space && !strcmp(name, argv[0])) {
            *used = 1;
            return &COMMANDS[i];
        }
        if (space && argc >= 2 && (size_t)(space - name) == strlen(argv[0]) &&
            !strncmp(name, argv[0], (size_t)(space - name)) && !strcmp(space + 1, argv[1])) {
            *used = 2;
            return &COMMANDS[i];
        }
    }
    return NULL;
}

/* Lists the commands of a group ("eval") when its name is given without a subcommand. */
static int print_group(const char *group, FILE *out) {
    int found = 0;
    size_t len = strlen(group);
    for (int i = 0; i < N_COMMANDS; i++) {
        const CommandSpec *s = COMMANDS[i].spec();
        if (!strncmp(s->name, group, len) && s->name[len] == ' ') {
            if (!found) fprintf(out, "usage: cutkit %s SUBCOMMAND [FLAGS]\n\n", group);
            fprintf(out, "  %-16s %s\n", s->name, s->summary);
            found = 1;
        }
    }
    return found;
}

int main(int argc, char **argv) {
    /* The OpenMP and OpenBLAS runtimes read their environment when they load, before main:
     * set the defaults (short OpenMP spins, so idle threads do not burn a shared core;
     * OpenBLAS's kernel for this CPU) and re-execute this program once, with the environment
     * (CUTKIT_PARENT_PID included) surviving. The user's own settings always stand. */
    const int omp_changed = threads_env_defaults();
    blas_env_ensure(argv);                          /* re-executes when it sets OPENBLAS_CORETYPE */
    if (omp_changed) execv("/proc/self/exe", argv); /* failing, run with the runtime's default */
    /* a command spawned by a pipeline (train/stage.h) dies with it: before any thread starts */
    CkError err = {{0}};
    if (parentdeath_arm_from_env(&err) != 0) {
        fprintf(stderr, "cutkit: %s\n", err.msg);
        return 1;
    }
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
        int used = 0;
        const Command *c = find_command(argc - 2, argv + 2, &used);
        if (!c && print_group(argv[2], stdout)) return 0;
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
    int used = 0;
    const Command *c = find_command(argc - 1, argv + 1, &used);
    if (!c && print_group(name, stderr)) return 2;
    if (!c) {
        fprintf(stderr, "cutkit: unknown command '%s' (see 'cutkit help')\n", name);
        return 2;
    }
    return c->run(argc - 1 - used, argv + 1 + used);
}
