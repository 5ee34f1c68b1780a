/* hash.h — the two hashes cutkit uses: FNV-1a (64-bit) for fingerprints that are stored in
 * files and must never change, and a fast mixing hash for in-memory tables. */
#ifndef CK_HASH_H
#define CK_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV1A64_OFFSET 0xcbf29ce484222325ull

/* Continues an FNV-1a 64 hash h (start from HASH_FNV1A64_OFFSET) over size bytes. Stable
 * across versions: checkpoints and results store it. */
uint64_t hash_fnv1a64(uint64_t h, const void *data, size_t size);

/* A fast hash of n bytes with well-spread low bits, for power-of-two open-addressing tables;
 * never stored, so it may change. */
uint64_t hash_bytes(const void *data, size_t n);

#endif
