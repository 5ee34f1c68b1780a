/* synth_judge.c — the synthetic world's words, its instructions (written and parsed) and the
 * rule-based judge that finds wrong fact mentions in free text. */
#include "datasets/synth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/strbuf.h"

/* TinyStories words, so that the stories260K model knows them; no word of one list is a
 * word of another or of the story templates (synth.c), which the judge relies on. */
static const char *const NAMES[SYNTH_N_NAMES] = {
    "Lily", "Mia", "Sue", "Anna", "Lucy", "Sara", "Amy", "Emma", "Jane", "Kim", "Zoe", "Ella",
    "Tom",  "Ben", "Tim", "Sam",  "Max",  "Jack", "Leo", "Bob",  "Joe",  "Dan", "Ted", "Finn"};
static const char *const COLOURS[SYNTH_N_COLOURS] = {"red",    "blue",  "green", "yellow", "pink",
                                                     "purple", "brown", "black", "white",  "gray"};
static const char *const OBJECTS[SYNTH_N_OBJECTS] = {"ball",  "kite", "car",     "hat",  "doll",
                                                     "bike",  "boat", "box",     "cup",  "drum",
                                                     "truck", "bag",  "balloon", "teddy"};
static const char *const PLACES[SYNTH_N_PLACES] = {"park",   "sea",   "forest", "farm",
                                                   "garden", "beach", "river",  "hill",
                                                   "lake",   "town",  "zoo",    "pond"};

static const char *const *const LISTS[SYNTH_N_KINDS] = {NAMES, COLOURS, OBJECTS, PLACES};
static const int COUNTS[SYNTH_N_KINDS] = {SYNTH_N_NAMES, SYNTH_N_COLOURS, SYNTH_N_OBJECTS,
                                          SYNTH_N_PLACES};
static const char *const KIND_NAMES[SYNTH_N_KINDS] = {"a name", "a colour", "an object", "a place"};

const char *synth_word(SynthKind kind, int index) {
    if ((int)kind < 0 || kind >= SYNTH_N_KINDS || index < 0 || index >= COUNTS[kind]) return NULL;
    return LISTS[kind][index];
}

int synth_word_count(SynthKind kind) {
    return (int)kind >= 0 && kind < SYNTH_N_KINDS ? COUNTS[kind] : 0;
}

char *synth_instruction(const SynthFacts *f) {
    char buf[256];
    int n = snprintf(buf, sizeof buf, "Write a story about a %s named %s who has a %s %s",
                     f->girl ? "girl" : "boy", NAMES[f->v[SYNTH_NAME]], COLOURS[f->v[SYNTH_COLOUR]],
                     OBJECTS[f->v[SYNTH_OBJECT]]);
    if (f->v[SYNTH_PLACE] >= 0)
        n += snprintf(buf + n, sizeof buf - (size_t)n, " and lives near the %s",
                      PLACES[f->v[SYNTH_PLACE]]);
    snprintf(buf + n, sizeof buf - (size_t)n, ".");
    return strdup(buf);
}

/* ---- words of a text ---- */

int synth_is_word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/* Finds the next word at or after *pos: sets [*start, *end) and returns 1, or 0 at the end. */
static int next_word(const char *s, size_t *pos, size_t *start, size_t *end) {
    size_t i = *pos;
    while (s[i] && !synth_is_word_byte((unsigned char)s[i])) i++;
    if (!s[i]) return 0;
    *start = i;
    while (s[i] && synth_is_word_byte((unsigned char)s[i])) i++;
    *end = *pos = i;
    return 1;
}

/* Returns 1 when s[0..n) equals word ignoring ASCII case. */
static int word_is(const char *s, size_t n, const char *word) {
    return strlen(word) == n && !strncasecmp(s, word, n);
}

/* Finds the world word that s[0..n) is: sets *kind, *index and *len (the bytes that name it,
 * without an object's plural ending) and returns 1; 0 for any other word. */
static int lookup_word(const char *s, size_t n, int *kind, int *index, size_t *len) {
    for (int k = 0; k < SYNTH_N_KINDS; k++) {
        for (int i = 0; i < COUNTS[k]; i++) {
            const char *w = LISTS[k][i];
            size_t wl = strlen(w);
            int match = word_is(s, n, w);
            /* plurals: "kites", "boxes" */
            if (!match && k == SYNTH_OBJECT && n > wl && !strncasecmp(s, w, wl)) {
                const char *rest = s + wl;
                size_t rl = n - wl;
                match = (rl == 1 && (rest[0] == 's' || rest[0] == 'S')) ||
                        (rl == 2 && !strncasecmp(rest, "es", 2));
            }
            if (match) {
                *kind = k;
                *index = i;
                *len = wl;
                return 1;
            }
        }
    }
    return 0;
}

/* ---- the instruction ---- */

/* A step of the instruction grammar: a literal word, or a slot of a kind. */
typedef struct {
    const char *literal; /* NULL for a slot */
    int kind;            /* SynthKind, or -1 for the gender word */
} Step;

static const Step HEAD[] = {{"write", 0},        {"a", 0},           {"story", 0},
                            {"about", 0},        {"a", 0},           {NULL, -1},
                            {"named", 0},        {NULL, SYNTH_NAME}, {"who", 0},
                            {"has", 0},          {"a", 0},           {NULL, SYNTH_COLOUR},
                            {NULL, SYNTH_OBJECT}};
static const Step PLACE_TAIL[] = {
    {"and", 0}, {"lives", 0}, {"near", 0}, {"the", 0}, {NULL, SYNTH_PLACE}};

/* Matches one step against the word s[0..n) (n 0 at the end of the text). */
static int match_step(const Step *st, const char *s, size_t n, size_t at, SynthFacts *f,
                      CkError *err) {
    if (st->literal) {
        if (n && word_is(s, n, st->literal)) return 0;
        return n ? ck_fail(err, "expected '%s' at byte %zu, found '%.*s'", st->literal, at,
                           (int)(n > 40 ? 40 : n), s)
                 : ck_fail(err, "expected '%s' at byte %zu, found the end", st->literal, at);
    }
    if (st->kind < 0) {
        if (n && (word_is(s, n, "girl") || word_is(s, n, "boy"))) {
            f->girl = word_is(s, n, "girl");
            return 0;
        }
        return ck_fail(err, "expected 'girl' or 'boy' at byte %zu, found %s%.*s%s", at,
                       n ? "'" : "the end", (int)(n > 40 ? 40 : n), s, n ? "'" : "");
    }
    for (int i = 0; n && i < COUNTS[st->kind]; i++) {
        if (word_is(s, n, LISTS[st->kind][i])) {
            f->v[st->kind] = i;
            return 0;
        }
    }
    const char *const *list = LISTS[st->kind];
    return ck_fail(err, "expected %s (%s, %s, %s, ...) at byte %zu, found %s%.*s%s",
                   KIND_NAMES[st->kind], list[0], list[1], list[2], at, n ? "'" : "the end",
                   (int)(n > 40 ? 40 : n), s, n ? "'" : "");
}

int synth_parse_instruction(const char *instruction, SynthFacts *facts, CkError *err) {
    SynthFacts f = {0, {-1, -1, -1, -1}};
    size_t pos = 0, a = 0, b = 0;
    const size_t n_head = sizeof HEAD / sizeof HEAD[0];
    const size_t n_tail = sizeof PLACE_TAIL / sizeof PLACE_TAIL[0];
    for (size_t i = 0; i < n_head + n_tail; i++) {
        const int more = next_word(instruction, &pos, &a, &b);
        if (i == n_head && !more) break; /* no place clause */
        const size_t at = more ? a : strlen(instruction);
        const Step *st = i < n_head ? &HEAD[i] : &PLACE_TAIL[i - n_head];
        if (i == n_head && !word_is(instruction + a, b - a, "and"))
            return ck_fail(err,
                           "not a synthetic-world instruction: expected the end (or 'and lives "
                           "near the PLACE') after the object at byte %zu, found '%.*s'",
                           a, (int)(b - a > 40 ? 40 : b - a), instruction + a);
        if (match_step(st, instruction + at, more ? b - a : 0, at, &f, err) != 0)
            return ck_wrap(err, "not a synthetic-world instruction (\"Write a story about a "
                                "girl named Mia who has a green kite and lives near the sea.\")");
    }
    if (next_word(instruction, &pos, &a, &b))
        return ck_fail(err,
                       "not a synthetic-world instruction: expected the end after the place "
                       "at byte %zu, found '%.*s'",
                       a, (int)(b - a > 40 ? 40 : b - a), instruction + a);
    *facts = f;
    return 0;
}

/* ---- judgments ---- */

char *synth_judgment_text(const SynthFacts *f, const int *kinds, const int *words, int n) {
    if (n <= 0) return NULL;
    StrBuf out = {0};
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        const char *sep = i ? " " : "";
        const char *w = LISTS[kinds[i]][words[i]];
        const char *right =
            f->v[kinds[i]] >= 0 ? LISTS[kinds[i]][f->v[kinds[i]]] : "(none)"; /* never shown */
        switch (kinds[i]) {
        case SYNTH_NAME:
            rc = strbuf_printf(&out, "%sThe name should be %s, not %s.", sep, right, w);
            break;
        case SYNTH_COLOUR:
            rc = strbuf_printf(&out, "%sThe %s should be %s, not %s.", sep,
                               OBJECTS[f->v[SYNTH_OBJECT]], right, w);
            break;
        case SYNTH_OBJECT:
            rc = strbuf_printf(&out, "%s%s should have a %s, not a %s.", sep,
                               NAMES[f->v[SYNTH_NAME]], right, w);
            break;
        default:
            rc = strbuf_printf(&out, "%sThe place should be the %s, not the %s.", sep, right, w);
            break;
        }
    }
    if (rc != 0) {
        strbuf_free(&out);
        return NULL;
    }
    return strbuf_take(&out);
}

/* One mention of a world word in a response. */
typedef struct {
    int kind, index;
    SynthSpan span;
} Mention;

/* Collects the response's wrong mentions in text order into *out (malloc'd, *n of them). */
static int wrong_mentions(const SynthFacts *f, const char *response, Mention **out, int *n,
                          CkError *err) {
    int cap = 16;
    *n = 0;
    *out = malloc((size_t)cap * sizeof **out);
    if (!*out) return ck_fail(err, "out of memory");
    size_t pos = 0, a, b, len;
    int kind, index;
    while (next_word(response, &pos, &a, &b)) {
        if (!lookup_word(response + a, b - a, &kind, &index, &len)) continue;
        if (index == f->v[kind] || (kind == SYNTH_PLACE && f->v[kind] < 0)) continue;
        if (*n == cap) {
            Mention *g = realloc(*out, (size_t)(cap *= 2) * sizeof *g);
            if (!g) {
                free(*out);
                *out = NULL;
                return ck_fail(err, "out of memory");
            }
            *out = g;
        }
        (*out)[(*n)++] = (Mention){kind, index, {(int)a, (int)(a + len)}};
    }
    return 0;
}

/* Lists the distinct (kind, word) errors among mentions m[0..n), ordered by kind and then by
 * first mention, into kinds/words (n entries each); returns how many. */
static int distinct_errors(const Mention *m, int n, int *kinds, int *words) {
    int k = 0;
    for (int kind = 0; kind < SYNTH_N_KINDS; kind++) {
        for (int i = 0; i < n; i++) {
            if (m[i].kind != kind) continue;
            int seen = 0;
            for (int j = 0; j < i && !seen; j++)
                seen = m[j].kind == kind && m[j].index == m[i].index;
            if (!seen) {
                kinds[k] = kind;
                words[k++] = m[i].index;
            }
        }
    }
    return k;
}

int synth_judge_response(const char *instruction, const char *response, char **judgment,
                         SynthSpan **spans, int *n_spans, int *n_errors, CkError *err) {
    if (judgment) *judgment = NULL;
    if (spans) *spans = NULL;
    if (n_spans) *n_spans = 0;
    *n_errors = 0;
    SynthFacts f;
    if (synth_parse_instruction(instruction, &f, err) != 0) return -1;
    Mention *m = NULL;
    int n = 0;
    if (wrong_mentions(&f, response, &m, &n, err) != 0) return -1;
    int *kinds = malloc(sizeof(int) * (size_t)(n ? 2 * n : 2));
    if (!kinds) {
        free(m);
        return ck_fail(err, "out of memory");
    }
    int *words = kinds + (n ? n : 1);
    const int n_err = distinct_errors(m, n, kinds, words);
    int rc = 0;
    if (judgment && n_err > 0) {
        *judgment = synth_judgment_text(&f, kinds, words, n_err);
        if (!*judgment) rc = ck_fail(err, "out of memory");
    }
    if (rc == 0 && spans) {
        *spans = malloc(sizeof(SynthSpan) * (size_t)(n ? n : 1));
        if (!*spans) rc = ck_fail(err, "out of memory");
        for (int i = 0; rc == 0 && i < n; i++) (*spans)[i] = m[i].span;
    }
    if (rc == 0) {
        if (n_spans) *n_spans = n;
        *n_errors = n_err;
    } else if (judgment) {
        free(*judgment);
        *judgment = NULL;
    }
    free(kinds);
    free(m);
    return rc;
}

int synth_count_errors(const char *instruction, const char *response, int *n_errors, CkError *err) {
    return synth_judge_response(instruction, response, NULL, NULL, NULL, n_errors, err);
}
