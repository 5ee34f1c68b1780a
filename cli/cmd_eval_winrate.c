/* cmd_eval_winrate.c — `cutkit eval winrate`: flags -> WinrateRunOptions -> winrate_run
 * (eval/winrate_run.h), AlpacaEval's win rates of annotation files as a leaderboard; with
 * AlpacaEval's tables, its length-controlled win rate (eval/lc_alpaca.h). */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "eval/lc_alpaca.h"
#include "eval/winrate_run.h"

#define MAX_FILES 256

static WinrateRunOptions opt;
static struct {
    const char *format, *glm, *difficulty, *gamed;
    int no_lc;
} flag;

static FlagSpec FLAGS[] = {
    {"format", FLAG_STRING, &flag.format, "table", 0, -1,
     "table, csv (AlpacaEval's leaderboard columns), markdown or json", "table|csv|markdown|json",
     0},
    {"lc-glm", FLAG_STRING, &flag.glm, "auto", 0, -1,
     "length-controlled GLM: auto (length_controlled_v1 with --lc-gamed, "
     "length_controlled_noreg with --lc-difficulty only, else glm_minimal_fixed), cutkit's "
     "glm_minimal_fixed, or AlpacaEval's length_controlled_minimal, _noreg or _v1",
     "auto|glm_minimal_fixed|length_controlled_minimal|length_controlled_noreg|"
     "length_controlled_v1",
     0},
    {"lc-difficulty", FLAG_STRING, &flag.difficulty, NULL, 0, -1,
     "AlpacaEval's instruction_difficulty.csv (index,instruction_difficulty; or a first column "
     "headed instruction)"},
    {"lc-gamed", FLAG_STRING, &flag.gamed, NULL, 0, -1,
     "AlpacaEval's df_gamed.csv (the gamed baselines' rows of length_controlled_v1)"},
    {"lc-l1", FLAG_DOUBLE, &opt.lc_l1, "0", 0, 1e9,
     "glm_minimal_fixed: L1 penalty on the mean log-loss (0: maximum likelihood)"},
    {"no-lc", FLAG_BOOL, &flag.no_lc, NULL, 0, -1, "skip the length-controlled win rate"},
};

static const CommandSpec SPEC = {
    "eval winrate",
    "win rates, standard errors and length-controlled win rates",
    "ANNOTATIONS.json... [--format table|csv|markdown|json] [--lc-difficulty CSV "
    "[--lc-gamed CSV]]",
    "One row per annotations.json (AlpacaEval's, v1 or v2, or cutkit eval judge's), named by\n"
    "generator_2 and sorted by win rate. x = preference - 1 (legacy 0 = draw = 0.5; null and\n"
    "values outside [1, 2] are missing): win_rate = 100 mean(x), standard_error = 100 sd(x)/\n"
    "sqrt(n), n_wins = #(x > .5), n_wins_base = #(x < .5), n_draws = #(preference 1.5),\n"
    "discrete_win_rate = 100 (wins + draws/2)/n.\n"
    "Length control: without AlpacaEval's tables, lc_winrate_glm_minimal is cutkit's GLM (tanh\n"
    "of the standardised length difference + the model-vs-baseline term, a fixed L1 penalty)\n"
    "fitted on the file's pairs: not AlpacaEval's number. With --lc-difficulty and --lc-gamed\n"
    "(the two files AlpacaEval downloads), length_controlled_winrate is AlpacaEval's\n"
    "length_controlled_v1, computed as its code does (cross-validated penalty, prediction over\n"
    "every annotation); the difficulty of annotation i is the table's index i, AlpacaEval's\n"
    "order. See eval/ALPACAEVAL.md.",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0],
};

const CommandSpec *cmd_eval_winrate_spec(void) {
    return &SPEC;
}

/* The GLM the flags ask for; 2 with a message when its tables are missing. */
static int choose_glm(LcGlm *glm) {
    static const char *const NAMES[] = {"glm_minimal_fixed", "length_controlled_minimal",
                                        "length_controlled_noreg", "length_controlled_v1"};
    if (strcmp(flag.glm, "auto") == 0)
        *glm = flag.gamed        ? LC_GLM_ALPACA_V1
               : flag.difficulty ? LC_GLM_ALPACA_NOREG
                                 : LC_GLM_MINIMAL_FIXED;
    else
        for (int k = 0; k < 4; k++)
            if (strcmp(flag.glm, NAMES[k]) == 0) *glm = (LcGlm)k;
    if (*glm == LC_GLM_ALPACA_V1 && !flag.gamed)
        return cli_error(&SPEC, 2, "--lc-glm length_controlled_v1 needs --lc-gamed df_gamed.csv");
    if (*glm == LC_GLM_ALPACA_NOREG && !flag.difficulty)
        return cli_error(&SPEC, 2,
                         "--lc-glm length_controlled_noreg needs --lc-difficulty "
                         "instruction_difficulty.csv");
    if (*glm != LC_GLM_MINIMAL_FIXED && opt.lc_l1 != 0)
        return cli_error(&SPEC, 2,
                         "--lc-l1 is the penalty of glm_minimal_fixed; AlpacaEval's GLMs "
                         "cross-validate theirs");
    if (*glm == LC_GLM_ALPACA_NOREG)
        fprintf(stderr,
                "cutkit %s: note: without --lc-gamed this is AlpacaEval's "
                "length_controlled_noreg; its leaderboards print length_controlled_v1\n",
                SPEC.name);
    return 0;
}

/* Loads the tables named by the flags into opt (1 with a message on failure). */
static int load_tables(LcDifficulty *difficulty, LcGamed *gamed) {
    CkError err = {{0}};
    if (flag.difficulty && lc_difficulty_load(difficulty, flag.difficulty, &err) != 0)
        return cli_fail(&SPEC, 1, &err);
    if (flag.gamed && lc_gamed_load(gamed, flag.gamed, &err) != 0) return cli_fail(&SPEC, 1, &err);
    opt.lc_difficulty = flag.difficulty ? difficulty : NULL;
    opt.lc_gamed = flag.gamed ? gamed : NULL;
    return 0;
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
    if (opt.lc && (rc = choose_glm(&opt.lc_glm)) != 0) return rc;
    LcDifficulty difficulty = {0};
    LcGamed gamed = {0};
    if (opt.lc) rc = load_tables(&difficulty, &gamed);
    CkError err = {{0}};
    if (rc == 0 && winrate_run(&opt, NULL, &err) != 0) rc = cli_fail(&SPEC, 1, &err);
    lc_difficulty_free(&difficulty);
    lc_gamed_free(&gamed);
    return rc;
}
