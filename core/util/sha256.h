/* sha256.h — SHA-256 (FIPS 180-4), for checking a data file against a published checksum. */
#ifndef CK_SHA256_H
#define CK_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t n_bytes;        /* bytes hashed so far */
    unsigned char block[64]; /* the pending partial block */
    size_t fill;             /* bytes in block */
} Sha256;

/* Starts a hash. */
void sha256_init(Sha256 *s);

/* Adds n bytes of data. */
void sha256_update(Sha256 *s, const void *data, size_t n);

/* Finishes the hash into out (32 bytes); s must be initialised again before reuse. */
void sha256_final(Sha256 *s, unsigned char out[32]);

/* The digest of data[0..n) as 64 lower-case hex digits and a NUL. */
void sha256_hex(const void *data, size_t n, char out[65]);

/* Writes digest (32 bytes) as 64 lower-case hex digits and a NUL. */
void sha256_to_hex(const unsigned char digest[32], char out[65]);

#endif
