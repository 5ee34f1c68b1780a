/* flags.h — table-driven command-line flags: every flag has a type, a default and a help
 * line, so parsing, defaults and `cutkit help COMMAND` come from one table. */
#ifndef CK_FLAGS_H
#define CK_FLAGS_H

#include <stdint.h>
#include <stdio.h>

typedef enum { FLAG_INT, FLAG_FLOAT, FLAG_DOUBLE, FLAG_U64, FLAG_STRING, FLAG_BOOL } FlagType;

typedef struct {
    const char *name; /* without the leading "--" */
    FlagType type;
    void *target;    /* int*, float*, uint64_t*, const char**, int* (bool) */
    const char *def; /* default as text (NULL: none / off) */
    double min, max; /* accepted range for numbers (min > max: unchecked) */
    const char *help;
} FlagSpec;

typedef struct {
    const char *name;
    const char *summary; /* one line for `cutkit help` */
    const char *usage;   /* argument synopsis after the command name */
    const char *details; /* paragraph for `cutkit help COMMAND` (may be NULL) */
    FlagSpec *flags;
    int n_flags;
} CommandSpec;

/* Applies defaults, then parses argv[0..argc) into the targets. Positional arguments are
 * collected into positional (capacity max_positional). On a bad flag or value prints one
 * line naming it to stderr and returns 2; returns 0 on success. */
int flags_parse(const CommandSpec *cmd, int argc, char **argv, char **positional,
                int max_positional, int *n_positional);

/* Prints the command's usage and every flag with its default. */
void flags_print_help(const CommandSpec *cmd, FILE *out);

#endif
