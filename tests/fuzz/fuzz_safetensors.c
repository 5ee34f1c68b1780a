/* fuzz_safetensors.c — libFuzzer harness for the safetensors reader (see README.md here).
 *
 * Each input is parsed as a whole safetensors image. The sanitizers catch any read outside
 * the input (libFuzzer hands over a heap copy of exactly `size` bytes) and any leak; the
 * checks below catch a parse that accepts a table the rest of the API cannot honour. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"

/* A broken invariant is reported as a crash so that libFuzzer saves the input. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    SafetensorsFile f;
    CkError err = {{0}};
    if (safetensors_parse(&f, data, size, &err) != 0) {
        CHECK(err.msg[0] != '\0'); /* every refusal says why */
        CHECK(f.tensors == NULL && f.metadata == NULL && f.n_tensors == 0);
        return 0;
    }
    size_t covered = 0;
    for (size_t i = 0; i < safetensors_count(&f); i++) {
        const SafetensorsTensor *t = safetensors_at(&f, i);
        CHECK(safetensors_find(&f, t->name) == t);
        CHECK(t->begin <= t->end && t->end <= f.data_size);
        CHECK(t->ndim >= 0 && t->ndim <= SAFETENSORS_MAX_DIMS);
        covered += t->end - t->begin;
        CHECK(safetensors_dtype_bits(t->dtype) > 0);
        if (t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16) {
            /* numel is bounded by the data size for these, which keeps the allocation small */
            CHECK(t->numel <= f.data_size);
            float *out = malloc((t->numel ? t->numel : 1) * sizeof *out);
            CHECK(out != NULL);
            CHECK(safetensors_read_f32(&f, t, out, &err) == 0);
            free(out);
        } else {
            CHECK(safetensors_read_f32(&f, t, NULL, &err) == -1); /* refused, dst untouched */
        }
    }
    CHECK(covered == f.data_size); /* the tensors tile the buffer */
    for (size_t i = 0; i < f.n_metadata; i++)
        CHECK(safetensors_metadata(&f, f.metadata[i].key) == f.metadata[i].value);
    safetensors_close(&f);
    return 0;
}
