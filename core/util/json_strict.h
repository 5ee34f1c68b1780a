/* json_strict.h — the one strict JSON parse: a text is exactly one JSON value, with nothing
 * after it but white space. cJSON stops at the end of the first value and would silently take
 * a concatenated file as its first half; every loader of a JSON file goes through here. */
#ifndef CK_JSON_STRICT_H
#define CK_JSON_STRICT_H

#include <stddef.h>

#include "util/ck_error.h"

typedef struct cJSON cJSON;

/* Where and why json_parse_exact refused a text. */
typedef struct {
    size_t offset;   /* byte offset of the problem in the text given (a BOM counted) */
    size_t line;     /* its 1-based line */
    int after_value; /* 1: a complete value was followed by other content; 0: not valid JSON */
} JsonStrictError;

/* Parses text[0..len) (which need not be NUL-terminated and may hold NULs, which are never
 * white space) as one JSON value followed only by JSON white space (space, tab, LF, CR). A
 * leading UTF-8 byte-order mark is skipped, as editors on Windows write one. Returns the
 * value (the caller deletes it), or NULL with *where filled (when where is not NULL). */
cJSON *json_parse_exact(const char *text, size_t len, JsonStrictError *where);

/* json_parse_exact with the refusal in err, named by source: "SOURCE: not valid JSON near
 * byte N (line L)" (cJSON's position of the error, which may be a byte or two past it) or
 * "SOURCE: content after the JSON value at byte N (line L)" (exact). */
cJSON *json_parse_strict(const char *text, size_t len, const char *source, CkError *err);

/* Reads the file at path (at most max_bytes) and parses it with json_parse_strict, messages
 * naming path. Returns the value (the caller deletes it) or NULL with err set. */
cJSON *json_load_file(const char *path, size_t max_bytes, CkError *err);

#endif
