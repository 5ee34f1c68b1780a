/* embedded.c — access to the bytes that embedded.S links in. */
#include "formats/embedded.h"

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
