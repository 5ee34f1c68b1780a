/* test_tokenizer_families.c — the tokenizer.json configurations of the Qwen 2/2.5/3 and
 * Gemma/Gemma 2 families on the small fixtures of tests/fixtures/tokenizers (their normalizer,
 * pre-tokenizer, model options, decoder and post-processor over a tiny vocabulary of ours),
 * against goldens by the npm `tokenizers` package, with and without special tokens
 * (tokenizer_golden.h). The real files: test_tokenizer_real.c. */
#include "tests/tokenizer_golden.h"

static const Family FAMILIES[] = {
    {"qwen2-small", NULL, NULL},
    {"gemma2-small", NULL, NULL},
};

int main(void) {
    return run_families("tokenizer_families", FAMILIES, sizeof FAMILIES / sizeof FAMILIES[0]);
}
