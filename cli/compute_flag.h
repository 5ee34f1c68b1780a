/* compute_flag.h — the --compute flag row (fp32 | bf16) that commands with matrix products
 * share. The command passes the string to compute_parse and the result to
 * matmul_set_compute (model/matmul.h), which refuses bf16, saying why, where it cannot run. */
#ifndef CK_COMPUTE_FLAG_H
#define CK_COMPUTE_FLAG_H

#include "cli/flags.h"

/* target: const char ** receiving "fp32" or "bf16" */
#define FLAG_COMPUTE(target)                                                                       \
    {                                                                                              \
        "compute", FLAG_STRING, target, "fp32", 0, -1,                                             \
            "matrix products: fp32, or bf16 inputs with fp32 accumulation (needs oneDNN or "       \
            "avx512_bf16)",                                                                        \
            "fp32|bf16", 0                                                                         \
    }

/* Parses value and sets the process's compute type; returns 0, or the exit code after printing
 * why (2: not fp32 or bf16; 1: bf16 cannot run on this machine or build). */
int cli_apply_compute(const CommandSpec *cmd, const char *value);

#endif
