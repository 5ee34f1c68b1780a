/* compute_flag.c — applying the --compute and --base-dtype rows (compute_flag.h). */
#include "cli/compute_flag.h"

#include "formats/lm.h"
#include "model/matmul.h"

int cli_apply_compute(const CommandSpec *cmd, const char *value) {
    CkError err = {{0}};
    MatmulCompute c;
    if (compute_parse(value, &c, &err) != 0) return cli_fail(cmd, 2, &err);
    if (matmul_set_compute(c, &err) != 0) return cli_fail(cmd, 1, &err);
    return 0;
}

int cli_apply_base_dtype(const CommandSpec *cmd, const char *value, WeightDtype *held) {
    CkError err = {{0}};
    return lm_parse_base_dtype(value, held, &err) != 0 ? cli_fail(cmd, 2, &err) : 0;
}
