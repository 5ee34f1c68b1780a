/* compute_flag.h — the flags that say how a command's products run and its weights are held:
 * the --compute row (fp32 | bf16), whose string goes to compute_parse and then to
 * matmul_set_compute (model/matmul.h), which refuses bf16, saying why, where it cannot run;
 * and the --base-dtype row (cli/flags.h FLAG_BASE_DTYPE), parsed for lm_open_held. */
#ifndef CK_COMPUTE_FLAG_H
#define CK_COMPUTE_FLAG_H

#include "cli/flags.h"
#include "model/weight.h"

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

/* Parses a --base-dtype value into *held (lm_parse_base_dtype); returns 0, or 2 after printing
 * why (the value and the choices). */
int cli_apply_base_dtype(const CommandSpec *cmd, const char *value, WeightDtype *held);

#endif
