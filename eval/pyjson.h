/* pyjson.h — JSON text as Python's json.dumps writes it with ensure_ascii=False: the files of
 * lm-evaluation-harness (results_<date>.json with indent=2, the --log_samples lines on one
 * line), and the texts it hashes (doc_hash is the SHA-256 of json.dumps(doc, indent=2)), so
 * that a reader or a hash sees the same bytes.
 *
 * The tree is a cJSON tree. Numbers: a cJSON number prints as a Python int when it is integral
 * (below 2^53 in magnitude), else as repr(float); a value that Python holds as a float even
 * when integral (a metric of 1.0, a task version 1.0) is added with pyjson_float, which keeps
 * its repr. Strings: '"' '\\' and the control characters escaped as json.dumps does (\n \r \t
 * \b \f, others \u00XX), everything else (valid UTF-8 assumed) as it is. */
#ifndef CK_PYJSON_H
#define CK_PYJSON_H

#include <cjson/cJSON.h>

#include "util/strbuf.h"

/* Python's repr(x) for a finite double: the shortest digits that read back as x, positional
 * for exponents -4 <= e < 16 ("0.0001", "1.0", "123.25") and "1e-05" / "1.5e+16" beyond;
 * "NaN", "Infinity", "-Infinity" otherwise (json.dumps's words). out holds at least 32. */
void pyjson_float_repr(double x, char *out);

/* A node printing repr(x) (null when x is not finite, as cutkit writes missing values);
 * NULL when out of memory. */
cJSON *pyjson_float(double x);

/* Adds pyjson_float(x) to obj under key; returns 0, or -1 when out of memory. */
int pyjson_add_float(cJSON *obj, const char *key, double x);

/* Appends s as a JSON string (quotes included) to out. Returns 0, or -1 when out of memory. */
int pyjson_put_string(StrBuf *out, const char *s);

/* Appends item as json.dumps(item, indent=indent) writes it: indent < 0 on one line with ", "
 * and ": " between items; indent >= 0 one item a line, nested indent spaces deeper, "," and
 * ": " ("[]" and "{}" when empty). Returns 0, or -1 when out of memory. */
int pyjson_dump(const cJSON *item, int indent, StrBuf *out);

#endif
