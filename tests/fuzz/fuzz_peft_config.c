/* fuzz_peft_config.c — libFuzzer harness for adapter_config.json (peft_config_parse, see
 * README.md here). Each input is the file's text: a refusal says why; an accepted config has
 * a positive rank, a positive finite lora_alpha, a dropout in [0, 1) and known target modules,
 * and lora_init on a small model either builds adapters with a finite scale or refuses. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "formats/peft.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static Model model; /* dim 16, built once */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    CkError err = {{0}};
    if (!model.params) {
        ModelConfig mc = {16, 24, 2, 4, 2, 32, 8, 1e-5f, 10000.0f, ROPE_HALF_SPLIT, 0};
        CHECK(model_init(&model, &mc, &err) == 0);
    }
    LoraConfig c;
    if (peft_config_parse(&c, (const char *)data, size, "adapter_config.json", &err) != 0) {
        CHECK(err.msg[0] != '\0');
        return 0;
    }
    CHECK(c.rank >= 1);
    CHECK(c.alpha > 0 && isfinite(c.alpha));
    CHECK(c.dropout >= 0 && c.dropout < 1);
    CHECK(c.target_mask != 0 && (c.target_mask & ~LORA_TARGET_ALL) == 0);
    LoraAdapters ad;
    if (lora_init(&ad, &model, &c, 1, &err) != 0) {
        CHECK(c.rank > model.config.dim); /* the only refusal left */
        return 0;
    }
    CHECK(isfinite(ad.scale) && ad.scale > 0);
    lora_free(&ad);
    return 0;
}
