/* flags.c — parsing of --name value, --name=value and boolean --name flags. */
#include "cli/flags.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/json_strict.h"
#include "util/termsafe.h"

int cli_error(const CommandSpec *cmd, int code, const char *fmt, ...) {
    /* Messages quote paths, names and records from files: formatted first, then written with
     * their control characters escaped, so that none reaches the terminal raw. */
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    const int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *msg = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (msg) vsnprintf(msg, (size_t)n + 1, fmt, again);
    va_end(again);
    fprintf(stderr, "cutkit %s: ", cmd->name);
    termsafe_fputs_line(stderr, msg ? msg : "(out of memory formatting the message)");
    fputc('\n', stderr);
    free(msg);
    return code;
}

int cli_fail(const CommandSpec *cmd, int code, const CkError *err) {
    return cli_error(cmd, code, "%s", err->msg[0] ? err->msg : "failed (no reason given)");
}

static int bad_value(const CommandSpec *cmd, const FlagSpec *f, const char *value,
                     const char *expected) {
    return cli_error(cmd, 2, "--%s expects %s, got '%s'", f->name, expected, value);
}

static int out_of_range(const CommandSpec *cmd, const FlagSpec *f, const char *value) {
    return cli_error(cmd, 2, "--%s must be between %g and %g, got '%s'", f->name, f->min, f->max,
                     value);
}

/* 1 when value is one of the '|'-separated choices. */
static int among_choices(const char *choices, const char *value) {
    size_t n = strlen(value);
    for (const char *c = choices; *c;) {
        const char *bar = strchr(c, '|');
        size_t k = bar ? (size_t)(bar - c) : strlen(c);
        if (k == n && !strncmp(c, value, n)) return 1;
        if (!bar) break;
        c = bar + 1;
    }
    return 0;
}

/* "a, b or c" from "a|b|c", for messages. */
static void choices_text(const char *choices, char *out, size_t cap) {
    size_t o = 0, bars = 0;
    for (const char *c = choices; *c; c++) bars += *c == '|';
    for (const char *c = choices; *c && o + 8 < cap; c++) {
        if (*c != '|') {
            out[o++] = *c;
            continue;
        }
        const char *sep = --bars ? ", " : " or ";
        for (const char *p = sep; *p && o + 1 < cap; p++) out[o++] = *p;
    }
    out[o] = '\0';
}

/* Stores value into the flag's target; returns 0, or 2 after printing why not. */
static int set_flag(const CommandSpec *cmd, const FlagSpec *f, const char *value) {
    char *end = NULL;
    errno = 0;
    switch (f->type) {
    case FLAG_INT: {
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end) return bad_value(cmd, f, value, "an integer");
        if (f->min <= f->max && (v < f->min || v > f->max)) return out_of_range(cmd, f, value);
        *(int *)f->target = (int)v;
        return 0;
    }
    case FLAG_FLOAT:
    case FLAG_DOUBLE: {
        double v = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(v) ||
            (f->type == FLAG_FLOAT && fabs(v) > FLT_MAX))
            return bad_value(cmd, f, value, "a number");
        if (f->min <= f->max && (v < f->min || v > f->max)) return out_of_range(cmd, f, value);
        if (f->type == FLAG_FLOAT)
            *(float *)f->target = (float)v;
        else
            *(double *)f->target = v;
        return 0;
    }
    case FLAG_U64: {
        if (value[0] == '-') return bad_value(cmd, f, value, "a non-negative integer");
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || end == value || *end)
            return bad_value(cmd, f, value, "a non-negative integer");
        *(uint64_t *)f->target = (uint64_t)v;
        return 0;
    }
    case FLAG_STRING:
        if (f->choices && !among_choices(f->choices, value)) {
            char allowed[512];
            choices_text(f->choices, allowed, sizeof allowed);
            return bad_value(cmd, f, value, allowed);
        }
        *(const char **)f->target = value;
        return 0;
    case FLAG_BOOL:
        if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes")) {
            *(int *)f->target = 1;
        } else if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no")) {
            *(int *)f->target = 0;
        } else {
            return bad_value(cmd, f, value, "true or false");
        }
        return 0;
    }
    return 2;
}

static const FlagSpec *find_flag(const CommandSpec *cmd, const char *name, size_t len) {
    for (int j = 0; j < cmd->n_flags; j++)
        if (strlen(cmd->flags[j].name) == len && !strncmp(cmd->flags[j].name, name, len))
            return &cmd->flags[j];
    return NULL;
}

/* The parsed --settings file: string flags point into it, so it lives as long as the process
 * (one per process; still reachable at exit, so not a leak). */
static cJSON *settings_doc;

/* Applies a JSON object of flag names and values (strings, numbers, booleans), as if given
 * on the command line before the real flags, which therefore override it. */
static int apply_settings(const CommandSpec *cmd, const char *path) {
    CkError err = {{0}};
    size_t len = 0;
    char *text = fileio_read_text(path, 1u << 20, &len, &err);
    if (!text) {
        return cli_error(cmd, 2, "--settings: %s", err.msg);
    }
    cJSON *doc = json_parse_strict(text, len, path, &err);
    free(text);
    if (!doc) return cli_error(cmd, 2, "--settings: %s", err.msg);
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return cli_error(cmd, 2, "%s: expected a JSON object of flag names and values", path);
    }
    cJSON_Delete(settings_doc);
    settings_doc = doc;
    const cJSON *item;
    cJSON_ArrayForEach(item, doc) {
        const FlagSpec *f = find_flag(cmd, item->string, strlen(item->string));
        if (!f || !strcmp(item->string, "settings")) {
            return cli_error(cmd, 2, "%s: unknown setting '%s' (see 'cutkit help %s')", path,
                             item->string, cmd->name);
        }
        char number[64];
        const char *value;
        if (cJSON_IsString(item)) {
            value = item->valuestring;
        } else if (cJSON_IsNumber(item)) {
            snprintf(number, sizeof number, "%.17g", item->valuedouble);
            value = number;
        } else if (cJSON_IsBool(item)) {
            value = cJSON_IsTrue(item) ? "true" : "false";
        } else {
            return cli_error(cmd, 2, "%s: setting '%s' must be a string, number or boolean", path,
                             item->string);
        }
        if (f->type == FLAG_STRING && !cJSON_IsString(item)) {
            return cli_error(cmd, 2, "%s: setting '%s' must be a string", path, item->string);
        }
        if (set_flag(cmd, f, value) != 0) return 2;
    }
    return 0;
}

int flags_parse(const CommandSpec *cmd, int argc, char **argv, char **positional,
                int max_positional, int *n_positional) {
    *n_positional = 0;
    for (int i = 0; i < cmd->n_flags; i++) {
        const FlagSpec *f = &cmd->flags[i];
        if (f->type == FLAG_BOOL) *(int *)f->target = 0;
        if (f->type == FLAG_STRING) *(const char **)f->target = NULL;
        if (f->def && set_flag(cmd, f, f->def) != 0) return 2; /* a bug in the table */
    }
    /* --settings FILE first, so that the command line's own flags override it */
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--")) break;
        const char *path = NULL;
        if (!strcmp(argv[i], "--settings")) {
            if (i + 1 >= argc) {
                return cli_error(cmd, 2, "--settings needs a value");
            }
            path = argv[i + 1];
        } else if (!strncmp(argv[i], "--settings=", 11)) {
            path = argv[i] + 11;
        }
        if (path && apply_settings(cmd, path) != 0) return 2;
    }
    int only_positional = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (!only_positional && !strcmp(arg, "--settings")) {
            i++; /* applied above */
            continue;
        }
        if (!only_positional && !strncmp(arg, "--settings=", 11)) continue;
        if (only_positional || arg[0] != '-' || arg[1] != '-' || arg[2] == '\0') {
            if (!only_positional && !strcmp(arg, "--")) {
                only_positional = 1;
                continue;
            }
            if (*n_positional >= max_positional) {
                return cli_error(cmd, 2, "unexpected argument '%s' (see 'cutkit help %s')", arg,
                                 cmd->name);
            }
            positional[(*n_positional)++] = argv[i];
            continue;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        const FlagSpec *f = find_flag(cmd, name, name_len);
        if (!f) {
            return cli_error(cmd, 2, "unknown flag '--%.*s' (see 'cutkit help %s')", (int)name_len,
                             name, cmd->name);
        }
        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (f->type == FLAG_BOOL) {
            value = "true";
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            return cli_error(cmd, 2, "--%s needs a value", f->name);
        }
        if (set_flag(cmd, f, value) != 0) return 2;
    }
    for (int i = 0; i < cmd->n_flags; i++) {
        const FlagSpec *f = &cmd->flags[i];
        if (f->required && f->type == FLAG_STRING && !*(const char **)f->target)
            return cli_error(cmd, 2, "--%s is required (see 'cutkit help %s')", f->name, cmd->name);
    }
    return 0;
}

static const char *type_word(FlagType t) {
    switch (t) {
    case FLAG_INT:
    case FLAG_U64:
        return "N";
    case FLAG_FLOAT:
    case FLAG_DOUBLE:
        return "X";
    case FLAG_STRING:
        return "S";
    case FLAG_BOOL:
        return "";
    }
    return "";
}

void flags_print_help(const CommandSpec *cmd, FILE *out) {
    fprintf(out, "usage: cutkit %s %s\n\n%s\n", cmd->name, cmd->usage, cmd->summary);
    if (cmd->details) fprintf(out, "\n%s\n", cmd->details);
    if (cmd->n_flags) fprintf(out, "\nflags:\n");
    if (cmd->n_flags)
        fprintf(out, "  %-22s %s\n", "--settings FILE",
                "JSON object of flag names and values, applied before the command line");
    for (int i = 0; i < cmd->n_flags; i++) {
        const FlagSpec *f = &cmd->flags[i];
        char left[64];
        snprintf(left, sizeof left, "--%s %s", f->name, type_word(f->type));
        const char *def = f->def ? f->def : (f->type == FLAG_BOOL ? "off" : "none");
        char allowed[512] = "";
        if (f->choices) {
            char list[480];
            choices_text(f->choices, list, sizeof list);
            snprintf(allowed, sizeof allowed, "; one of %s", list);
        }
        if (f->required)
            fprintf(out, "  %-22s %s%s (required)\n", left, f->help, allowed);
        else if (!f->def && strstr(f->help, "default:")) /* the help already says what happens */
            fprintf(out, "  %-22s %s%s\n", left, f->help, allowed);
        else
            fprintf(out, "  %-22s %s%s (default: %s)\n", left, f->help, allowed,
                    *def ? def : "empty");
    }
}
