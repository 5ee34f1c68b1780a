/* cmd_eval_winrate.c — `cutkit eval winrate`: flags -> WinrateRunOptions -> winrate_run
 * (eval/winrate_run.h), AlpacaEval's win rates of annotation files as a leaderboard. */
#include <stdio.h>

#include "cli/commands.h"
#include "eval/winrate_run.h"

#define MAX_FILES 256

static WinrateRunOptions opt;
static struct {
    const char *format;
    int no_lc;
} flag;

static FlagSpec FLAGS[] = {
    {"format", FLAG_STRING, &flag.format, "table", 0, -1,
     "table, csv (AlpacaEval's leaderboard columns), markdown or json", "table|csv|markdown|json",
     0},
    {"lc-l1", FLAG_DOUBLE, &opt.lc_l1, "0", 0, 1e9,
     "L1 penalty of the length-controlled GLM, on the mean log-loss (0: maximum likelihood)"},
    {"no-lc", FLAG_BOOL, &flag.no_lc, NULL, 0, -1, "skip the length-controlled win rate"},
};

static const CommandSpec SPEC = {
    "eval winrate",
    "win rates, standard errors and length-controlled win rates",
    "ANNOTATIONS.json... [--format table|csv|markdown|json]",
    "One row per annotations.json (AlpacaEval's, v1 or v2, or cutkit eval judge's), named by\n"
    "generator_2 and sorted by win rate. x = preference - 1 (legacy 0 = draw = 0.5; null and\n"
    "values outside [1, 2] are missing): win_rate = 100 mean(x), standard_error = 100 sd(x)/\n"
    "sqrt(n), n_wins = #(x > .5), n_wins_base = #(x < .5), n_draws = #(preference 1.5),\n"
    "discrete_win_rate = 100 (wins + draws/2)/n. length_controlled_winrate is AlpacaEval's\n"
    "'minimal' GLM (tanh of the standardised length difference + the model-vs-baseline term,\n"
    "no instruction difficulty) fitted on the file's pairs: sigmoid of the baseline term.",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0],
};

const CommandSpec *cmd_eval_winrate_spec(void) {
    return &SPEC;
}

int cmd_eval_winrate(int argc, char **argv) {
    char *files[MAX_FILES];
    int n_files;
    winrate_run_options_init(&opt);
    int rc = flags_parse(&SPEC, argc, argv, files, MAX_FILES, &n_files);
    if (rc != 0) return rc;
    if (n_files == 0) return cli_error(&SPEC, 2, "give one or more annotations.json files");
    winrate_format_parse(flag.format, &opt.format); /* one of the choices */
    opt.files = (const char *const *)files;
    opt.n_files = n_files;
    opt.lc = !flag.no_lc;
    CkError err = {{0}};
    if (winrate_run(&opt, NULL, &err) != 0) return cli_fail(&SPEC, 1, &err);
    return 0;
}
