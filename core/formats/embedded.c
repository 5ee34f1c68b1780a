/* embedded.c — access to the bytes that embedded.S links in. */
#include "formats/embedded.h"

#include "formats/llama2c.h"

extern const unsigned char ck_embedded_model_start[], ck_embedded_model_end[];
extern const unsigned char ck_embedded_tokenizer_start[], ck_embedded_tokenizer_end[];

const void *embedded_model(size_t *size) {
    *size = (size_t)(ck_embedded_model_end - ck_embedded_model_start);
    return ck_embedded_model_start;
}

const void *embedded_tokenizer(size_t *size) {
    *size = (size_t)(ck_embedded_tokenizer_end - ck_embedded_tokenizer_start);
    return ck_embedded_tokenizer_start;
}

int embedded_model_load(Model *m, CkError *err) {
    size_t size;
    const void *data = embedded_model(&size);
    return llama2c_load(m, data, size, err);
}

int embedded_tokenizer_load(Tokenizer *t, CkError *err) {
    size_t size;
    const void *data = embedded_tokenizer(&size);
    return tokenizer_load_llama2c(t, data, size, EMBEDDED_TOKENIZER_VOCAB, err);
}
