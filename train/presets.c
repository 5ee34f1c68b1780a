/* presets.c — the presets' values, each with the line of the reference it comes from
 * (wwxu21/CUT at bb1d5de; "sh" is fine-tuning-unlike.sh, "README" its README.md, "py"
 * finetune_unlikelihood.py). Values the scripts do not set are those of transformers 4.33.2
 * (requirements.txt), whose TrainingArguments the script builds at py:502-529 without them. */
#include "train/presets.h"

#include <stdlib.h>
#include <string.h>

/* What both released runs share (sh:6-28 and README:109-131 differ only in λ and α). */
static const PresetSetting REFERENCE_TRAINING[] = {
    {"objective", "cut"},                            /* the script trains CUT only */
    {"lr", "4e-4"},                                  /* sh:13, README:116 --learning_rate 0.0004 */
    {"schedule", "cosine"},                          /* sh:24, README:127 --lr_scheduler 'cosine' */
    {"warmup", "100"},                               /* sh:25, README:128 --warmup_steps 100 */
    {"lr-from-first-step", "false"},                 /* the Trainer steps LambdaLR after AdamW */
    {"batch-size", "8"},                             /* sh:10, README:113 --batch_size 8 */
    {"micro-batch", "1"},                            /* sh:11, README:114 --micro_batch_size 1 */
    {"epochs", "1"},                                 /* sh:12, README:115 --num_epochs 1 */
    {"cutoff", "2048"},                              /* sh:14, README:117 --cutoff_len 2048 */
    {"align-p-ratio", "0.25"},                       /* sh:28, README:131 --downsample 0.25 */
    {"align-p-seed", "42"},                          /* py:29-30 random.seed(42); py:485 */
    {"keep-error", "true"},                          /* py:453: any judgment but None */
    {"lora", "true"},                                /* py:311-319: always LoRA */
    {"lora-r", "16"},                                /* sh:16, README:119 --lora_r 16 */
    {"lora-alpha", "16"},                            /* sh:17, README:120 --lora_alpha 16 */
    {"lora-dropout", "0.05"},                        /* sh:18, README:121 --lora_dropout 0.05 */
    {"lora-targets", "gate_proj,down_proj,up_proj"}, /* sh:19, README:122 */
    {"weight-decay", "0"},                           /* TrainingArguments.weight_decay 0.0 */
    {"beta1", "0.9"},                                /* adam_beta1 */
    {"beta2", "0.999"},                              /* adam_beta2 */
    {"eps", "1e-8"},                                 /* adam_epsilon */
    {"max-grad-norm", "1"},                          /* max_grad_norm 1.0 */
    {"seed", "42"},                                  /* TrainingArguments.seed 42 (py:29) */
    {"gamma", "0"},                                  /* the code has no dynamic weight */
    {NULL, NULL},
};

static const PresetSetting REFERENCE_ONLINE[] = {
    {"lambda", "1.1"}, /* sh:3 threshold=1.1 */
    {"alpha", "1"},    /* sh:4 weight_unlike=1 */
    {NULL, NULL},
};

static const PresetSetting REFERENCE_OFFLINE[] = {
    {"lambda", "1.2"}, /* README:106 threshold=1.2 */
    {"alpha", "0.5"},  /* README:107 weight_unlike=0.5 */
    {NULL, NULL},
};

/* The online loop (cut-spec §5.1): generation as scripts/generate.py ("gen"), the training of
 * reference-online, merges as merge.py. */
static const PresetSetting ONLINE_REFERENCE[] = {
    {"per-iteration", "1000"},            /* the data/iter files: 1000 instructions each */
    {"temperature", "0"},                 /* gen:21-22 num_beams=1, temperature=0. (greedy) */
    {"top-p", "1"},                       /* gen:22 top_p=1 */
    {"max-tokens", "2048"},               /* gen:22 max_new_tokens=2048 */
    {"keep-after-split", "true"},         /* gen:24 output.split(spliter, 1)[-1] */
    {"strip", "true"},                    /* gen:66 output.strip() */
    {"train-preset", "reference-online"}, /* fine-tuning-unlike.sh */
    {"lambda", "1.1"},                    /* sh:3 */
    {"alpha", "1"},                       /* sh:4 */
    {"lr", "4e-4"},                       /* sh:13 */
    {"warmup", "100"},                    /* sh:25 */
    {"batch-size", "8"},                  /* sh:10 */
    {"steps", "0"},                       /* sh:12 --num_epochs 1: one epoch */
    {"cutoff", "2048"},                   /* sh:14 */
    {"align-p-ratio", "0.25"},            /* sh:28 */
    {"align-p-seed", "42"},               /* py:29-30 */
    {"lora", "true"},                     /* sh:16-19, merged by sh:30-33 */
    {"merge-dtype", "f16"},               /* merge.py:29 torch_dtype=torch.float16 */
    {"seed", "42"},                       /* TrainingArguments.seed */
    {NULL, NULL},
};

static const Preset PRESETS[] = {
    {"train", "reference-online", {REFERENCE_ONLINE, REFERENCE_TRAINING}},
    {"train", "reference-offline", {REFERENCE_OFFLINE, REFERENCE_TRAINING}},
    {"align-online", "reference", {ONLINE_REFERENCE, NULL}},
};

const Preset *preset_find(const char *command, const char *name) {
    for (size_t i = 0; i < sizeof PRESETS / sizeof PRESETS[0]; i++)
        if (!strcmp(PRESETS[i].command, command) && !strcmp(PRESETS[i].name, name))
            return &PRESETS[i];
    return NULL;
}

const char *preset_value(const Preset *p, const char *flag) {
    for (int part = 0; p && part < 2; part++)
        for (const PresetSetting *s = p->parts[part]; s && s->flag; s++)
            if (!strcmp(s->flag, flag)) return s->value;
    return NULL;
}

int preset_parse_ratio(const char *text, double *ratio, CkError *err) {
    if (!strcmp(text, "off")) {
        *ratio = -1;
        return 0;
    }
    char *end = NULL;
    const double r = strtod(text, &end);
    if (end == text || *end || !(r >= 0 && r <= 1))
        return ck_fail(err, "--align-p-ratio expects off or a number from 0 to 1, got '%s'", text);
    *ratio = r;
    return 0;
}
