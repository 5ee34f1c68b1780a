/* safetensors.h — reading and writing Hugging Face .safetensors files.
 *
 * Format: an 8-byte little-endian unsigned header length N, N bytes of UTF-8 JSON, then the
 * data buffer. The JSON is an object mapping each tensor name to
 * {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]} (byte offsets into the
 * data buffer, end one past the last byte) plus an optional "__metadata__" object of
 * string -> string. Tensors are little-endian, row-major, without strides.
 *
 * The reader treats the file as hostile: every number in the header is checked before it is
 * used, and a file that fails a check is refused with a message naming the tensor, never read
 * out of bounds. As in the reference implementation, the tensors must tile the data buffer
 * exactly: sorted by offset, each begins where the previous one ended, the first at 0 and the
 * last ending at the end of the buffer, so gaps, overlaps and trailing bytes are all refused.
 *
 * The writer keeps pointers to the caller's fp32 arrays (no copies, so saving a model does not
 * double its memory) and writes the file atomically. */
#ifndef CK_SAFETENSORS_H
#define CK_SAFETENSORS_H

#include <stddef.h>

#include "util/ck_error.h"

/* Every dtype name of the safetensors spec; any other name is refused at open. */
typedef enum {
    ST_F32,
    ST_F16,
    ST_BF16,
    ST_F64,
    ST_I8,
    ST_I16,
    ST_I32,
    ST_I64,
    ST_U8,
    ST_U16,
    ST_U32,
    ST_U64,
    ST_BOOL,
    ST_F8_E4M3,
    ST_F8_E5M2,
    ST_F8_E8M0,
    ST_F6_E2M3,
    ST_F6_E3M2,
    ST_F4,
    ST_C64,
    ST_DTYPE_COUNT
} SafetensorsDtype;

enum {
    SAFETENSORS_MAX_DIMS = 8,        /* deeper tensors are refused (none occur in LLMs) */
    SAFETENSORS_WRITER_MAX_DIMS = 4, /* the writer's limit */
};

/* The header is refused past this size, as in the reference implementation, so that a
 * hostile length cannot make the parser allocate and scan gigabytes. */
#define SAFETENSORS_MAX_HEADER ((size_t)100000000)

typedef struct {
    char *name; /* owned, NUL-terminated */
    SafetensorsDtype dtype;
    int ndim;
    size_t shape[SAFETENSORS_MAX_DIMS];
    size_t numel;      /* product of shape (1 for a scalar, 0 for an empty tensor) */
    size_t begin, end; /* byte range within the data buffer, validated */
} SafetensorsTensor;

typedef struct {
    char *key; /* owned */
    char *value;
} SafetensorsMeta;

typedef struct {
    const unsigned char *base; /* the whole file or buffer */
    size_t size;
    const unsigned char *data; /* the data buffer after the header */
    size_t data_size;
    void *map; /* the mapping when safetensors_open made one; NULL for a borrowed buffer */
    size_t map_size;
    size_t n_tensors;
    SafetensorsTensor *tensors; /* sorted by name */
    size_t n_metadata;
    SafetensorsMeta *metadata; /* sorted by key */
} SafetensorsFile;

/* Returns the spec's name of a dtype ("F32", "BF16", ...), or "?" for an invalid value. */
const char *safetensors_dtype_name(SafetensorsDtype dtype);

/* Returns the size of one element of dtype in bits (4 for F4, 16 for BF16, ...), or 0 for an
 * invalid value. */
int safetensors_dtype_bits(SafetensorsDtype dtype);

/* Parses and validates a safetensors image of `size` bytes at `data`, which the caller keeps
 * alive and unchanged until safetensors_close; fills f (zeroed on failure, nothing to free). */
int safetensors_parse(SafetensorsFile *f, const void *data, size_t size, CkError *err);

/* Memory-maps the file at path read-only (no copy of the tensor data) and parses it like
 * safetensors_parse; messages are prefixed with the path. The file must not be truncated while
 * open (reading a page past the new end would fault); replace it by rename, as the writer does. */
int safetensors_open(SafetensorsFile *f, const char *path, CkError *err);

/* Releases the tables and the mapping and zeroes f; safe on a zeroed or closed f. */
void safetensors_close(SafetensorsFile *f);

/* Returns the number of tensors in f (the "__metadata__" entry is not one). */
size_t safetensors_count(const SafetensorsFile *f);

/* Returns tensor i (0 <= i < safetensors_count) in name order, or NULL when out of range; with
 * safetensors_count this lists the names, e.g. to report tensors a loader did not use. */
const SafetensorsTensor *safetensors_at(const SafetensorsFile *f, size_t i);

/* Returns the tensor called name, or NULL when the file has none (binary search). */
const SafetensorsTensor *safetensors_find(const SafetensorsFile *f, const char *name);

/* Returns the raw little-endian bytes of t inside the mapping (t->end - t->begin of them); they
 * may be unaligned for the dtype. */
const void *safetensors_data(const SafetensorsFile *f, const SafetensorsTensor *t);

/* Tells the kernel that the mapped pages of t will not be read again (a loader that converted
 * t), so they leave the process's resident set; a no-op for a borrowed buffer. The bytes stay
 * readable (they are faulted in again from the file). */
void safetensors_release_pages(const SafetensorsFile *f, const SafetensorsTensor *t);

/* Converts the t->numel elements of t to fp32 into dst (room for t->numel floats); F32, F16
 * and BF16 are supported, any other dtype is refused with a message naming the tensor. */
int safetensors_read_f32(const SafetensorsFile *f, const SafetensorsTensor *t, float *dst,
                         CkError *err);

/* Returns the value of metadata key in f, or NULL when the file has no such key. */
const char *safetensors_metadata(const SafetensorsFile *f, const char *key);

/* fp16 / bf16 conversions used by the reader and the writer, exposed for tests. Returns the
 * fp32 value of IEEE binary16 bits h (subnormals, infinities and NaN payloads preserved). */
float safetensors_f16_to_f32(unsigned short h);

/* Returns the fp32 value of bfloat16 bits b (the top half of an fp32). */
float safetensors_bf16_to_f32(unsigned short b);

/* Returns x rounded to IEEE binary16, to nearest with ties to even (overflow to inf,
 * subnormals kept); NaN stays a NaN. */
unsigned short safetensors_f32_to_f16(float x);

/* Returns x rounded to bfloat16, to nearest with ties to even; NaN stays a (quiet) NaN. */
unsigned short safetensors_f32_to_bf16(float x);

/* ---- writer ---------------------------------------------------------------------------- */

typedef struct {
    char *name; /* owned copy */
    SafetensorsDtype dtype;
    int ndim;
    size_t shape[SAFETENSORS_WRITER_MAX_DIMS];
    size_t numel;
    const float *data; /* borrowed: must stay valid until safetensors_write returns */
} SafetensorsWriterTensor;

typedef struct {
    size_t n_tensors, cap_tensors;
    SafetensorsWriterTensor *tensors;
    size_t n_metadata, cap_metadata;
    SafetensorsMeta *metadata;
} SafetensorsWriter;

/* Initialises an empty writer. */
void safetensors_writer_init(SafetensorsWriter *w);

/* Adds tensor name of ndim (0..4) dims shape[] whose fp32 values are at data (kept as a
 * pointer, not copied), to be stored as dtype ST_F32, ST_F16 or ST_BF16; refuses other dtypes,
 * invalid UTF-8 names, the reserved name "__metadata__" and names already added. */
int safetensors_writer_add(SafetensorsWriter *w, const char *name, SafetensorsDtype dtype, int ndim,
                           const size_t *shape, const float *data, CkError *err);

/* Sets metadata key to value (both copied; a second call with the same key replaces the
 * value); refuses strings that are not valid UTF-8. */
int safetensors_writer_set_metadata(SafetensorsWriter *w, const char *key, const char *value,
                                    CkError *err);

/* Writes the collected tensors and metadata to path atomically (util/fileio.h's AtomicFile: a
 * temporary file in the same directory is written, fsync'd and renamed over path, then the
 * directory is fsync'd), so path holds either its old content or the complete new file. The header
 * lists the tensors by name and is space-padded so the data starts 8-byte aligned; the data is laid
 * out widest dtype first so every tensor is aligned to its element size. */
int safetensors_write(const SafetensorsWriter *w, const char *path, CkError *err);

/* Releases the writer's copies of names and metadata (never the tensor data) and zeroes it. */
void safetensors_writer_free(SafetensorsWriter *w);

#endif
