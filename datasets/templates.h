/* templates.h — prompt templates in the CUT reference's JSON shape
 * ({"prompt_no_input", "prompt_no_input_judge", "response_split"}), with the reference
 * Alpaca strings built in (spec §1.1) and user templates loadable from a JSON file. */
#ifndef CK_TEMPLATES_H
#define CK_TEMPLATES_H

#include "util/ck_error.h"

/* The reference Alpaca strings, byte for byte (cut-spec §1.1). */
extern const char TEMPLATE_ALPACA_PROMPT_NO_INPUT[];
extern const char TEMPLATE_ALPACA_PROMPT_NO_INPUT_JUDGE[];
extern const char TEMPLATE_ALPACA_RESPONSE_SPLIT[];

/* The Forward Prediction baseline (train/OBJECTIVES.md): the response is followed by this
 * heading and then its judgment, in the judge template's "### Judgment:" style; a positive
 * record's judgment is TEMPLATE_POSITIVE_JUDGMENT, the paper's Table-1 wording. */
extern const char TEMPLATE_FORWARD_JUDGMENT_HEADING[];
extern const char TEMPLATE_POSITIVE_JUDGMENT[];

typedef struct {
    char *prompt_no_input;       /* Align-P, Misalign and inference: uses {instruction} */
    char *prompt_no_input_judge; /* Align-N: uses {instruction} and {judgment} */
    char *response_split;        /* the marker generated text is split on */
} Template;

/* Fills t with copies of the built-in Alpaca templates. */
int template_default(Template *t, CkError *err);

/* Parses a template JSON object (json_text, NUL-terminated) into t; source names it in
 * messages. The three string fields are required, other fields (e.g. "description",
 * "prompt_input") are ignored, and both prompts are checked to format. */
int template_parse(Template *t, const char *json_text, const char *source, CkError *err);

/* Reads and parses the template JSON file at path (see template_parse). */
int template_load(Template *t, const char *path, CkError *err);

/* Releases the strings of t and zeroes it; safe on a zeroed Template. */
void template_free(Template *t);

/* Formats fmt as Python's str.format(instruction=..., judgment=...) does for these names:
 * "{instruction}" and "{judgment}" are replaced by the values (inserted verbatim, never
 * re-scanned), "{{" and "}}" become "{" and "}". Any other field, a lone brace, or a
 * placeholder whose value is NULL is refused. Returns a malloc'd string or NULL. */
char *template_format(const char *fmt, const char *instruction, const char *judgment, CkError *err);

/* Builds the training instruction as the reference does: instruction alone when input is
 * NULL or empty, else instruction + "\n" + input. Returns a malloc'd string or NULL. */
char *template_join_input(const char *instruction, const char *input);

#endif
