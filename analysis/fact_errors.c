/* fact_errors.c — generate, judge by the world's rules, count. */
#include "analysis/fact_errors.h"

#include <cjson/cJSON.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/fileio.h"

/* Counts the colour words of text that name colour c (whole words, any case). */
static int count_word(const char *text, const char *word) {
    size_t len = strlen(word);
    int n = 0;
    for (const char *p = text; (p = strcasestr(p, word)); p += len) {
        int before =
            p == text || !((p[-1] >= 'a' && p[-1] <= 'z') || (p[-1] >= 'A' && p[-1] <= 'Z'));
        char after = p[len];
        if (before && !((after >= 'a' && after <= 'z') || (after >= 'A' && after <= 'Z'))) n++;
    }
    return n;
}

int fact_errors_measure(const char *const *instructions, const char *const *responses, int n,
                        const int *misconceived, FactErrorStats *s, CkError *err) {
    memset(s, 0, sizeof *s);
    for (int i = 0; i < n; i++) {
        SynthFacts facts;
        int n_errors = 0;
        if (synth_parse_instruction(instructions[i], &facts, err) != 0 ||
            synth_count_errors(instructions[i], responses[i], &n_errors, err) != 0)
            return ck_wrap(err, "response %d", i);
        s->n_responses++;
        s->n_errors += n_errors;
        s->n_with_error += n_errors > 0;
        for (int c = 0; c < synth_word_count(SYNTH_COLOUR); c++)
            s->n_colour_mentions += count_word(responses[i], synth_word(SYNTH_COLOUR, c));
        int object = facts.v[SYNTH_OBJECT], colour = facts.v[SYNTH_COLOUR];
        int wrong = misconceived ? misconceived[object] : -1;
        if (wrong >= 0 && wrong != colour) {
            int shown = count_word(responses[i], synth_word(SYNTH_COLOUR, wrong));
            s->n_misconception_items++;
            s->n_misconceived += shown;
            s->n_misconception_shown += shown > 0;
        }
    }
    return 0;
}

int fact_errors_write_json(const FactErrorStats *s, const char *path, CkError *err) {
    double n = s->n_responses, p = n > 0 ? s->n_with_error / n : 0;
    double m = s->n_misconception_items;
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddNumberToObject(obj, "error_rate", p);
    cJSON_AddNumberToObject(obj, "stderr", n > 1 ? sqrt(p * (1 - p) / (n - 1)) : 0);
    cJSON_AddNumberToObject(obj, "n", s->n_responses);
    cJSON_AddNumberToObject(obj, "errors_per_response", n > 0 ? s->n_errors / n : 0);
    cJSON_AddNumberToObject(obj, "misconception_rate", m > 0 ? s->n_misconception_shown / m : 0);
    cJSON_AddNumberToObject(obj, "misconception_items", s->n_misconception_items);
    cJSON_AddNumberToObject(obj, "colour_mentions", s->n_colour_mentions);
    cJSON_AddNumberToObject(obj, "misconceived_mentions", s->n_misconceived);
    char *text = cJSON_Print(obj);
    cJSON_Delete(obj);
    if (!text) return ck_fail(err, "out of memory");
    int rc = fileio_write_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}
