/* fuzz_llama2c.c — libFuzzer harness for the llama2.c checkpoint reader (see README.md here).
 * Each input is a whole checkpoint image for llama2c_load (versions 0, 1 and 2): a refusal
 * says why and leaves the Model zeroed; an accepted model has a configuration the rest of
 * cutkit accepts, a parameter buffer of exactly its layout's size, and RoPE tables. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "formats/llama2c.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Model m;
    CkError err = {{0}};
    if (llama2c_load(&m, data, size, &err) != 0) {
        CHECK(err.msg[0] != '\0');
        CHECK(m.params == NULL && m.rope_cos == NULL && m.n_params == 0);
        return 0;
    }
    CHECK(model_config_validate(&m.config, &err) == 0);
    ParamTensor t[PARAM_COUNT];
    CHECK(model_param_layout(&m.config, t) == m.n_params);
    CHECK(m.params != NULL && m.rope_cos != NULL && m.rope_sin != NULL);
    /* every parameter was read from the input: touch them all */
    double sum = 0;
    for (size_t i = 0; i < m.n_params; i++) sum += m.params[i];
    (void)sum;
    model_free(&m);
    return 0;
}
