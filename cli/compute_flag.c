/* compute_flag.c — applying the --compute row (compute_flag.h). */
#include "cli/compute_flag.h"

#include "model/matmul.h"

int cli_apply_compute(const CommandSpec *cmd, const char *value) {
    CkError err = {{0}};
    MatmulCompute c;
    if (compute_parse(value, &c, &err) != 0) return cli_fail(cmd, 2, &err);
    if (matmul_set_compute(c, &err) != 0) return cli_fail(cmd, 1, &err);
    return 0;
}
