/* flags.h — table-driven command-line flags: every flag has a type, a default, a help line
 * and, where it has them, its allowed values and whether it is required, so that parsing,
 * defaults, checks, `cutkit help COMMAND` and every error message come from one table. */
#ifndef CK_FLAGS_H
#define CK_FLAGS_H

#include <stdint.h>
#include <stdio.h>

#include "util/ck_error.h"

typedef enum { FLAG_INT, FLAG_FLOAT, FLAG_DOUBLE, FLAG_U64, FLAG_STRING, FLAG_BOOL } FlagType;

typedef struct {
    const char *name; /* without the leading "--" */
    FlagType type;
    void *target;    /* int*, float*, uint64_t*, const char**, int* (bool) */
    const char *def; /* default as text (NULL: none / off) */
    double min, max; /* accepted range for numbers (min > max: unchecked) */
    const char *help;
    const char *choices; /* FLAG_STRING: "a|b|c", the only values accepted (NULL: any) */
    int required;        /* the command refuses to run without it */
} FlagSpec;

/* The flags that many commands share, one wording each (target: the option's field). */
#define FLAG_MODEL(target)                                                                         \
    {                                                                                              \
        "model", FLAG_STRING, target, NULL, 0, -1,                                                 \
            "llama2.c .bin or Hugging Face folder; default: embedded stories260K", NULL, 0         \
    }
#define FLAG_TOKENIZER(target)                                                                     \
    {                                                                                              \
        "tokenizer", FLAG_STRING, target, NULL, 0, -1,                                             \
            "tokenizer.json, tokenizer.model-derived .bin, or folder (default: the model's)",      \
            NULL, 0                                                                                \
    }
#define FLAG_ADAPTER(target)                                                                       \
    { "adapter", FLAG_STRING, target, NULL, 0, -1, "PEFT LoRA adapter folder to apply", NULL, 0 }
#define FLAG_THREADS(target)                                                                       \
    { "threads", FLAG_INT, target, "0", 0, 1024, "threads (0: one per core)", NULL, 0 }
/* --base-dtype: the dtype the model's matrices are held in (lm_open_held) */
#define FLAG_BASE_DTYPE(target)                                                                    \
    {                                                                                              \
        "base-dtype", FLAG_STRING, target, "f32", 0, -1,                                           \
            "dtype the model's matrices are held in (a Hugging Face folder: bf16/f16 as stored, "  \
            "int8 per-group absmax; norms stay f32)",                                              \
            "f32|bf16|f16|int8", 0                                                                 \
    }
/* --out DIR, required: the run directory the command writes */
#define FLAG_OUT_REQUIRED(target, help)                                                            \
    { "out", FLAG_STRING, target, NULL, 0, -1, help, NULL, 1 }

typedef struct {
    const char *name;
    const char *summary; /* one line for `cutkit help` */
    const char *usage;   /* argument synopsis after the command name */
    const char *details; /* paragraph for `cutkit help COMMAND` (may be NULL) */
    FlagSpec *flags;
    int n_flags;
} CommandSpec;

/* Applies defaults, then parses argv[0..argc) into the targets. Positional arguments are
 * collected into positional (capacity max_positional). On a bad flag or value (a number out
 * of range, a value not among the choices, a required flag missing) prints one line naming
 * it to stderr and returns 2; returns 0 on success. */
int flags_parse(const CommandSpec *cmd, int argc, char **argv, char **positional,
                int max_positional, int *n_positional);

/* Prints the command's usage and every flag with its default. */
void flags_print_help(const CommandSpec *cmd, FILE *out);

/* The one error path of the commands: prints "cutkit CMD: message" (one line) to stderr and
 * returns code, so that a command writes `return cli_error(&SPEC, 2, "...", ...)`. Exit codes:
 * 2 for bad usage (flags, arguments, their combination), 1 for a failure while running. The
 * message quotes paths and text from files, so its control characters (newlines included)
 * are printed as escapes (util/termsafe.h). A --settings file must hold one JSON object. */
int cli_error(const CommandSpec *cmd, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prints a library error as "cutkit CMD: <err->msg>" and returns code. */
int cli_fail(const CommandSpec *cmd, int code, const CkError *err);

#endif
