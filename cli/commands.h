/* commands.h — the subcommands of cutkit: each has a flag table (for help) and a main. */
#ifndef CK_COMMANDS_H
#define CK_COMMANDS_H

#include "cli/flags.h"

typedef struct {
    const CommandSpec *(*spec)(void);
    int (*run)(int argc, char **argv); /* argv excludes the command name; returns exit code */
} Command;

const CommandSpec *cmd_generate_spec(void);
int cmd_generate(int argc, char **argv);

const CommandSpec *cmd_tokenize_spec(void);
int cmd_tokenize(int argc, char **argv);

const CommandSpec *cmd_convert_spec(void);
int cmd_convert(int argc, char **argv);

const CommandSpec *cmd_train_spec(void);
int cmd_train(int argc, char **argv);

const CommandSpec *cmd_merge_spec(void);
int cmd_merge(int argc, char **argv);

const CommandSpec *cmd_refine_spec(void);
int cmd_refine(int argc, char **argv);

const CommandSpec *cmd_score_spec(void);
int cmd_score(int argc, char **argv);

const CommandSpec *cmd_datasets_synth_spec(void);
int cmd_datasets_synth(int argc, char **argv);

const CommandSpec *cmd_eval_mc_spec(void);
int cmd_eval_mc(int argc, char **argv);

const CommandSpec *cmd_eval_generate_spec(void);
int cmd_eval_generate(int argc, char **argv);

const CommandSpec *cmd_eval_judge_spec(void);
int cmd_eval_judge(int argc, char **argv);

const CommandSpec *cmd_eval_winrate_spec(void);
int cmd_eval_winrate(int argc, char **argv);

const CommandSpec *cmd_eval_rouge_spec(void);
int cmd_eval_rouge(int argc, char **argv);

const CommandSpec *cmd_align_online_spec(void);
int cmd_align_online(int argc, char **argv);

const CommandSpec *cmd_sweep_spec(void);
int cmd_sweep(int argc, char **argv);

const CommandSpec *cmd_report_spec(void);
int cmd_report(int argc, char **argv);

const CommandSpec *cmd_contrast_spec(void);
int cmd_contrast(int argc, char **argv);

const CommandSpec *cmd_demo_spec(void);
int cmd_demo(int argc, char **argv);

#endif
