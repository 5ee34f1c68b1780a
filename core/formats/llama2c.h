/* llama2c.h — llama2.c checkpoints: the legacy version-0 layout and export.py's versions 1
 * (fp32) and 2 (Q8_0, dequantised to fp32 on load). */
#ifndef CK_LLAMA2C_H
#define CK_LLAMA2C_H

#include <stddef.h>

#include "util/ck_error.h"
#include "model/model.h"

/* Parses a checkpoint image of `size` bytes into m (which it initialises; the data is
 * copied). Every size is checked against the header before any weight is read: a
 * truncated, oversized or inconsistent image is refused with a message saying what. */
int llama2c_load(Model *m, const void *data, size_t size, CkError *err);

/* Memory-maps the file at path and loads it as llama2c_load does; the message of a
 * refused file starts with its path. */
int llama2c_load_file(Model *m, const char *path, CkError *err);

/* Writes m to path as a legacy version-0 checkpoint (the layout stories260K.bin uses), with
 * freshly computed RoPE tables; m must use the interleaved rotary convention. Atomic, through
 * util/fileio.h's AtomicFile (temporary file, fsync, rename, directory fsync). */
int llama2c_save(const Model *m, const char *path, CkError *err);

#endif
