/* preset_flags.c — see preset_flags.h. */
#include "cli/preset_flags.h"

#include <stdlib.h>
#include <string.h>

/* Sets the default of every flag p names in flags[0..n) to p's value; returns the name of a
 * flag p names that flags lacks, or NULL. */
static const char *set_defaults(const Preset *p, FlagSpec *flags, int n) {
    for (int part = 0; part < 2; part++)
        for (const PresetSetting *s = p->parts[part]; s && s->flag; s++) {
            int i = 0;
            while (i < n && strcmp(flags[i].name, s->flag)) i++;
            if (i == n) return s->flag;
            flags[i].def = s->value;
        }
    return NULL;
}

int preset_flags_parse(const CommandSpec *cmd, const char *const *preset_name, int argc,
                       char **argv, char **positional, int max_positional, int *n_positional,
                       const Preset **preset) {
    *preset = NULL;
    int rc = flags_parse(cmd, argc, argv, positional, max_positional, n_positional);
    const Preset *p = rc == 0 && *preset_name ? preset_find(cmd->name, *preset_name) : NULL;
    if (!p) return rc;
    FlagSpec *flags = malloc(sizeof *flags * (size_t)cmd->n_flags);
    if (!flags) return cli_error(cmd, 1, "out of memory");
    memcpy(flags, cmd->flags, sizeof *flags * (size_t)cmd->n_flags);
    const char *unknown = set_defaults(p, flags, cmd->n_flags);
    if (unknown) {
        free(flags);
        return cli_error(cmd, 1, "preset %s sets --%s, which %s does not have", p->name, unknown,
                         cmd->name);
    }
    CommandSpec under = *cmd;
    under.flags = flags;
    rc = flags_parse(&under, argc, argv, positional, max_positional, n_positional);
    free(flags);
    if (rc == 0) *preset = p;
    return rc;
}
