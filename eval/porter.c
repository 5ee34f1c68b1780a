/* porter.c — see porter.h. The steps follow the rule tables of Porter's paper ("An algorithm
 * for suffix stripping", Program 14(3), 1980); the places where NLTK_EXTENSIONS departs from it
 * are marked "NLTK:". A rule list is read as the paper and NLTK read it: the first rule whose
 * suffix ends the word decides, and when its condition fails no later rule is tried. */
#include "eval/porter.h"

#include <string.h>

typedef struct {
    char *b;    /* the word, edited in place */
    size_t k;   /* its current length */
    size_t cap; /* the original length: no step makes a word longer than it was */
} Word;

static int vowel_letter(char c) {
    return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
}

/* The consonant status of b[j] given that of b[j - 1]: a consonant is a letter other than
 * a, e, i, o, u, and other than a y that follows a consonant (y first in a word is one). */
static int next_cons(char c, size_t j, int prev_cons) {
    if (vowel_letter(c)) return 0;
    if (c == 'y') return j == 0 ? 1 : !prev_cons;
    return 1;
}

/* Whether b[i] is a consonant; computed forward, so that a long run of y's costs a loop, not a
 * recursion as deep as the run. */
static int cons_at(const char *b, size_t i) {
    int cons = 1;
    for (size_t j = 0; j <= i; j++) cons = next_cons(b[j], j, cons);
    return cons;
}

/* m of b[0..n) written [C](VC)^m[V]: the number of vowel-to-consonant changes. */
static int measure(const char *b, size_t n) {
    int m = 0, cons = 1;
    for (size_t j = 0; j < n; j++) {
        int c = next_cons(b[j], j, cons);
        if (j > 0 && !cons && c) m++;
        cons = c;
    }
    return m;
}

/* *v*: b[0..n) holds a vowel. */
static int has_vowel(const char *b, size_t n) {
    int cons = 1;
    for (size_t j = 0; j < n; j++) {
        cons = next_cons(b[j], j, cons);
        if (!cons) return 1;
    }
    return 0;
}

/* *d: b[0..n) ends with a double consonant. */
static int ends_double(const char *b, size_t n) {
    return n >= 2 && b[n - 1] == b[n - 2] && cons_at(b, n - 1);
}

/* *o: b[0..n) ends consonant-vowel-consonant, the last not w, x or y. NLTK: a two-letter
 * vowel-consonant stem counts too (with no exception for w, x, y). */
static int ends_cvc(const char *b, size_t n) {
    if (n == 2) return !cons_at(b, 0) && cons_at(b, 1);
    if (n < 3) return 0;
    char last = b[n - 1];
    return cons_at(b, n - 3) && !cons_at(b, n - 2) && cons_at(b, n - 1) && last != 'w' &&
           last != 'x' && last != 'y';
}

static int ends(const Word *w, const char *s) {
    size_t n = strlen(s);
    return n <= w->k && memcmp(w->b + w->k - n, s, n) == 0;
}

/* Replaces the last cut letters by rep. */
static void set_suffix(Word *w, size_t cut, const char *rep) {
    size_t r = strlen(rep);
    if (w->k - cut + r > w->cap) return; /* cannot happen: every rule shortens overall */
    w->k -= cut;
    memcpy(w->b + w->k, rep, r);
    w->k += r;
}

typedef enum { COND_NONE, COND_M_GT0, COND_M_GT1, COND_ION, COND_LOGI } Cond;

typedef struct {
    const char *suffix, *rep;
    Cond cond;
} Rule;

/* Whether cond holds for the stem b[0..n) left when the suffix is removed. */
static int cond_holds(Cond cond, const char *b, size_t n) {
    switch (cond) {
    case COND_NONE:
        return 1;
    case COND_M_GT0:
        return measure(b, n) > 0;
    case COND_M_GT1:
        return measure(b, n) > 1;
    case COND_ION: /* (m>1 and (*S or *T)) */
        return measure(b, n) > 1 && (b[n - 1] == 's' || b[n - 1] == 't');
    case COND_LOGI: /* NLTK: the l of -logi stays with the stem, so geo-/theo- count */
        return measure(b, n + 1) > 0;
    }
    return 0;
}

static void apply_rules(Word *w, const Rule *rules, size_t n_rules) {
    for (size_t i = 0; i < n_rules; i++) {
        if (!ends(w, rules[i].suffix)) continue;
        size_t cut = strlen(rules[i].suffix);
        if (cond_holds(rules[i].cond, w->b, w->k - cut)) set_suffix(w, cut, rules[i].rep);
        return;
    }
}

#define N_RULES(r) (sizeof(r) / sizeof((r)[0]))

/* Plurals: sses -> ss, ies -> i, ss -> ss, s -> (nothing). */
static void step1a(Word *w) {
    if (w->k == 4 && ends(w, "ies")) { /* NLTK: dies -> die, while flies -> fli */
        set_suffix(w, 3, "ie");
        return;
    }
    static const Rule rules[] = {{"sses", "ss", COND_NONE},
                                 {"ies", "i", COND_NONE},
                                 {"ss", "ss", COND_NONE},
                                 {"s", "", COND_NONE}};
    apply_rules(w, rules, N_RULES(rules));
}

/* -eed, -ed, -ing, then the tidying of what -ed/-ing leave (conflat -> conflate, hopp -> hop,
 * fil -> file). */
static void step1b(Word *w) {
    if (ends(w, "ied")) { /* NLTK: died -> die, spied -> spi */
        set_suffix(w, 3, w->k == 4 ? "ie" : "i");
        return;
    }
    if (ends(w, "eed")) {
        if (measure(w->b, w->k - 3) > 0) w->k--; /* (m>0) eed -> ee */
        return;
    }
    size_t cut = ends(w, "ed") ? 2 : ends(w, "ing") ? 3 : 0;
    if (!cut || !has_vowel(w->b, w->k - cut)) return;
    w->k -= cut;
    if (ends(w, "at") || ends(w, "bl") || ends(w, "iz")) {
        set_suffix(w, 0, "e");
    } else if (ends_double(w->b, w->k)) {
        char c = w->b[w->k - 1];
        if (c != 'l' && c != 's' && c != 'z') w->k--;
    } else if (measure(w->b, w->k) == 1 && ends_cvc(w->b, w->k)) {
        set_suffix(w, 0, "e");
    }
}

/* y -> i. NLTK: only after a consonant that is not the whole stem (happy -> happi, enjoy and
 * sky unchanged), instead of the paper's (*v*). */
static void step1c(Word *w) {
    if (w->k > 2 && w->b[w->k - 1] == 'y' && cons_at(w->b, w->k - 2)) w->b[w->k - 1] = 'i';
}

/* Double suffixes to single ones (m>0). */
static void step2(Word *w) {
    /* NLTK: -alli -> -al is tried first and the result goes through the list below */
    if (ends(w, "alli") && measure(w->b, w->k - 4) > 0) w->k -= 2;
    /* NLTK: -bli -> -ble (Porter's later correction of -abli -> -able), plus -fulli, -logi */
    static const Rule rules[] = {{"ational", "ate", COND_M_GT0}, {"tional", "tion", COND_M_GT0},
                                 {"enci", "ence", COND_M_GT0},   {"anci", "ance", COND_M_GT0},
                                 {"izer", "ize", COND_M_GT0},    {"bli", "ble", COND_M_GT0},
                                 {"alli", "al", COND_M_GT0},     {"entli", "ent", COND_M_GT0},
                                 {"eli", "e", COND_M_GT0},       {"ousli", "ous", COND_M_GT0},
                                 {"ization", "ize", COND_M_GT0}, {"ation", "ate", COND_M_GT0},
                                 {"ator", "ate", COND_M_GT0},    {"alism", "al", COND_M_GT0},
                                 {"iveness", "ive", COND_M_GT0}, {"fulness", "ful", COND_M_GT0},
                                 {"ousness", "ous", COND_M_GT0}, {"aliti", "al", COND_M_GT0},
                                 {"iviti", "ive", COND_M_GT0},   {"biliti", "ble", COND_M_GT0},
                                 {"fulli", "ful", COND_M_GT0},   {"logi", "log", COND_LOGI}};
    apply_rules(w, rules, N_RULES(rules));
}

/* -ic-, -full, -ness etc. (m>0). */
static void step3(Word *w) {
    static const Rule rules[] = {{"icate", "ic", COND_M_GT0}, {"ative", "", COND_M_GT0},
                                 {"alize", "al", COND_M_GT0}, {"iciti", "ic", COND_M_GT0},
                                 {"ical", "ic", COND_M_GT0},  {"ful", "", COND_M_GT0},
                                 {"ness", "", COND_M_GT0}};
    apply_rules(w, rules, N_RULES(rules));
}

/* The remaining suffixes (m>1). */
static void step4(Word *w) {
    static const Rule rules[] = {
        {"al", "", COND_M_GT1},   {"ance", "", COND_M_GT1}, {"ence", "", COND_M_GT1},
        {"er", "", COND_M_GT1},   {"ic", "", COND_M_GT1},   {"able", "", COND_M_GT1},
        {"ible", "", COND_M_GT1}, {"ant", "", COND_M_GT1},  {"ement", "", COND_M_GT1},
        {"ment", "", COND_M_GT1}, {"ent", "", COND_M_GT1},  {"ion", "", COND_ION},
        {"ou", "", COND_M_GT1},   {"ism", "", COND_M_GT1},  {"ate", "", COND_M_GT1},
        {"iti", "", COND_M_GT1},  {"ous", "", COND_M_GT1},  {"ive", "", COND_M_GT1},
        {"ize", "", COND_M_GT1}};
    apply_rules(w, rules, N_RULES(rules));
}

/* A final -e (m>1, or m=1 and not *o), then -ll -> -l (m>1). Both conditions of 5a are tried,
 * unlike a rule list. */
static void step5(Word *w) {
    if (ends(w, "e")) {
        int m = measure(w->b, w->k - 1);
        if (m > 1 || (m == 1 && !ends_cvc(w->b, w->k - 1))) w->k--;
    }
    if (ends(w, "ll") && measure(w->b, w->k - 1) > 1) w->k--;
}

/* NLTK: irregular forms stemmed by table ("the errors drawn to Martin Porter's attention"). */
static const char *const IRREGULAR[][2] = {
    {"sky", "sky"},        {"skies", "sky"},       {"dying", "die"},        {"lying", "lie"},
    {"tying", "tie"},      {"news", "news"},       {"innings", "inning"},   {"inning", "inning"},
    {"outings", "outing"}, {"outing", "outing"},   {"cannings", "canning"}, {"canning", "canning"},
    {"howe", "howe"},      {"proceed", "proceed"}, {"exceed", "exceed"},    {"succeed", "succeed"}};

size_t porter_stem(char *w, size_t n) {
    for (size_t i = 0; i < N_RULES(IRREGULAR); i++) {
        if (strlen(IRREGULAR[i][0]) == n && !memcmp(w, IRREGULAR[i][0], n)) {
            size_t k = strlen(IRREGULAR[i][1]);
            memcpy(w, IRREGULAR[i][1], k);
            return k;
        }
    }
    if (n <= 2) return n; /* NLTK: too short to stem */
    Word word = {w, n, n};
    step1a(&word);
    step1b(&word);
    step1c(&word);
    step2(&word);
    step3(&word);
    step4(&word);
    step5(&word);
    return word.k;
}
