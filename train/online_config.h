/* online_config.h — OUT/config.json of an align-online run: the settings in effect (what a
 * preset and the flags made of them), as `cutkit train` records its own in its run directory,
 * so that a run says how it was made. */
#ifndef CK_ONLINE_CONFIG_H
#define CK_ONLINE_CONFIG_H

#include "train/online_run.h"
#include "util/ck_error.h"

/* Checks what the children would only refuse late (the merge dtype, the Align-P ratio) and
 * writes o's settings to OUT/config.json (atomically; rewritten when the run is resumed).
 * Returns 0, or -1 with err. */
int online_config_write(const OnlineRunOptions *o, CkError *err);

#endif
