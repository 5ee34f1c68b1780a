/* refine_template.h — the prompt `cutkit refine` gives a model to rewrite a response given its
 * judgment (ILF's refinement step): a built-in default and user templates read from JSON. */
#ifndef CK_REFINE_TEMPLATE_H
#define CK_REFINE_TEMPLATE_H

#include "util/ck_error.h"

/* The default refinement template (README: "cutkit refine"): Alpaca-style sections for the
 * instruction, the input (prompt_input only), the original response and the judgment, ending
 * with the header under which the model writes the improved response. */
extern const char REFINE_PROMPT_NO_INPUT[];
extern const char REFINE_PROMPT_INPUT[];
extern const char REFINE_STOP[];

/* A refinement template: placeholders {instruction}, {input} (prompt_input only), {output}
 * and {judgment}; "{{" and "}}" are literal braces. */
typedef struct {
    char *prompt_no_input; /* for records without an input */
    char *prompt_input;    /* for records with a non-empty input */
    char *stop;            /* the refinement ends where this text starts ("" : no stop) */
} RefineTemplate;

/* Fills t with copies of the default template. */
int refine_template_default(RefineTemplate *t, CkError *err);

/* Reads a template JSON object {"prompt_no_input": str, "prompt_input": str, "stop": str
 * (optional, default REFINE_STOP)} from path; other fields (e.g. "description") are
 * ignored. Each prompt is checked to format; errors name the file and field. */
int refine_template_load(RefineTemplate *t, const char *path, CkError *err);

/* Releases t's strings; safe on a zeroed template. */
void refine_template_free(RefineTemplate *t);

/* Formats the prompt of one record: t->prompt_input when input is non-empty, else
 * t->prompt_no_input, with the placeholders replaced verbatim (values never re-scanned).
 * Returns a malloc'd string, or NULL with err (an unknown field, a lone brace). */
char *refine_format(const RefineTemplate *t, const char *instruction, const char *input,
                    const char *output, const char *judgment, CkError *err);

#endif
