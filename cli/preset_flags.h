/* preset_flags.h — a command's flags read under a preset (train/presets.h): the preset's
 * values become the flags' defaults, so that a flag given explicitly, on the command line or
 * in --settings, still overrides it. */
#ifndef CK_PRESET_FLAGS_H
#define CK_PRESET_FLAGS_H

#include "cli/flags.h"
#include "train/presets.h"

/* Parses argv as flags_parse does; then, when *preset_name (the target of the command's
 * --preset flag, set by that parse) names a preset of cmd that has settings, parses argv again
 * with a copy of the flag table whose defaults are the preset's values; sets *preset to it
 * (NULL when none). Returns 0, or 2 after printing why (a bad flag), or 1 when the preset
 * names a flag the table lacks (a bug). */
int preset_flags_parse(const CommandSpec *cmd, const char *const *preset_name, int argc,
                       char **argv, char **positional, int max_positional, int *n_positional,
                       const Preset **preset);

#endif
