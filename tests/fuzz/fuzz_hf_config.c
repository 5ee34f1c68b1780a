/* fuzz_hf_config.c — libFuzzer harness for the Hugging Face config.json reader (see README.md
 * here). Each input, NUL-terminated, is parsed by hf_config_parse; an accepted config must
 * describe a model the rest of cutkit can build, and it must survive hf_config_to_json and a
 * second parse unchanged. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/hf_config.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    HfConfig cfg;
    CkError err = {{0}};
    if (hf_config_parse(&cfg, text, "config.json", &err) != 0) {
        CHECK(err.msg[0] != '\0'); /* every refusal says why */
        free(text);
        return 0;
    }
    const ModelConfig *m = &cfg.model;
    CHECK(m->dim > 0 && m->n_layers > 0 && m->n_heads > 0 && m->vocab_size > 0);
    CHECK(m->n_kv_heads > 0 && m->n_heads % m->n_kv_heads == 0);
    CHECK(m->hidden_dim > 0 && m->seq_len > 0);
    /* Writing it back and reading that again gives the same configuration. */
    char *json = hf_config_to_json(&cfg);
    CHECK(json != NULL);
    HfConfig again;
    if (hf_config_parse(&again, json, "again.json", &err) != 0) {
        fprintf(stderr, "re-parse failed: %s\n%s\n", err.msg, json);
        abort();
    }
    CHECK(again.model.dim == m->dim && again.model.n_layers == m->n_layers);
    CHECK(again.model.n_heads == m->n_heads && again.model.n_kv_heads == m->n_kv_heads);
    CHECK(again.model.vocab_size == m->vocab_size && again.model.hidden_dim == m->hidden_dim);
    CHECK(again.model.seq_len == m->seq_len);
    free(json);
    free(text);
    return 0;
}
