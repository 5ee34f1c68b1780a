/* synth.c — the generator of the synthetic judgment world: seeded instructions, responses
 * from story templates, negatives with wrong facts and their judgments, and the files. */
#include "datasets/synth.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/fileio.h"
#include "util/rng.h"
#include "util/strbuf.h"

const char SYNTH_PROMPT_NO_INPUT[] = "Task: {instruction}\nStory:";
const char SYNTH_PROMPT_NO_INPUT_JUDGE[] = "Task: {instruction}\nJudgment: {judgment}\nStory:";
const char SYNTH_RESPONSE_SPLIT[] = "Story:";

/* The story templates. Slots: {N} name, {C} colour, {O} object, {P} place, {G} girl/boy,
 * {S} She/He, {s} she/he, {H} her/his, {M} her/him; [...] is kept only when the instruction
 * has a place. Each mentions the name, colour and object 2-3 times, and no other world word
 * (the judge counts every world word). 30-39 words each. */
static const char *const STORIES[SYNTH_N_STORIES] = {
    " Once upon a time, there was a {G} named {N}.[ {S} lived near the {P}.] {N} had a {C} {O}. "
    "{S} loved the {O} very much. One day, {N} took the {C} {O} to play. {S} was very happy.",
    " {N} was a happy {G}.[ {S} lived by the {P}.] One day, {s} found a {C} {O} under a big "
    "tree. \"What a pretty {O}!\" said {N}. {S} took the {C} {O} home and played with it all "
    "day.",
    " There was a little {G} called {N}.[ Every morning {s} went to the {P}.] {S} wanted a "
    "{C} {O} more than anything. Mom gave {M} a {C} {O} for {H} birthday. {N} hugged the {O} "
    "and said thank you.",
    " One sunny day, {N} went outside with {H} {C} {O}.[ {S} went to the {P}.] {S} showed the "
    "{O} to a friend. The friend said, \"I like your {C} {O}!\" {N} felt proud and smiled.",
    " {N} had a {C} {O} that {s} loved.[ {S} lived near the {P}.] One day the {O} was lost. {N} "
    "looked under the bed and behind the door. At last {s} found the {C} {O} and laughed.",
    " Once there was a kind {G} named {N}.[ {S} played at the {P} every day.] {N} gave {H} {C} "
    "{O} to a sad friend. The friend loved the {C} {O}. {N} was glad to share {H} {O}.",
};

SynthOptions synth_default_options(void) {
    SynthOptions o = {.seed = 1,
                      .n_train = 1000,
                      .n_test = 200,
                      .n_warmup = 1000,
                      .negative_rate = 0.5,
                      .two_error_rate = 0.4,
                      .place_rate = 0.7,
                      .heldout_per_name = 2};
    return o;
}

/* ---- rendering ---- */

/* Renders story `story` with the shown values (shown->v) into a malloc'd string; the spans of
 * the slots of kinds whose shown value differs from facts->v are appended to spans (at most
 * max_spans) and counted in *n_spans. */
static char *render(int story, const SynthFacts *facts, const SynthFacts *shown, SynthSpan *spans,
                    int max_spans, int *n_spans) {
    StrBuf b = {0};
    const int girl = facts->girl;
    int rc = strbuf_put(&b, "", 0);
    *n_spans = 0;
    for (const char *s = STORIES[story]; rc == 0 && *s;) {
        if (*s == '[' || *s == ']') {
            /* the place sentence: skipped when there is no place */
            if (*s == '[' && shown->v[SYNTH_PLACE] < 0) s = strchr(s, ']');
            s++;
            continue;
        }
        if (*s != '{') {
            size_t k = strcspn(s, "{[]");
            rc = strbuf_put(&b, s, k);
            s += k;
            continue;
        }
        const char c = s[1];
        s += 3; /* "{X}" */
        int kind = c == 'N'   ? SYNTH_NAME
                   : c == 'C' ? SYNTH_COLOUR
                   : c == 'O' ? SYNTH_OBJECT
                   : c == 'P' ? SYNTH_PLACE
                              : -1;
        const char *w;
        if (kind >= 0)
            w = synth_word((SynthKind)kind, shown->v[kind]);
        else if (c == 'G')
            w = girl ? "girl" : "boy";
        else if (c == 'S')
            w = girl ? "She" : "He";
        else if (c == 's')
            w = girl ? "she" : "he";
        else if (c == 'H')
            w = girl ? "her" : "his";
        else
            w = girl ? "her" : "him"; /* 'M' */
        if (kind >= 0 && shown->v[kind] != facts->v[kind] && *n_spans < max_spans)
            spans[(*n_spans)++] = (SynthSpan){(int)b.n, (int)(b.n + strlen(w))};
        rc = strbuf_put(&b, w, strlen(w));
    }
    if (rc != 0) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* ---- generation ---- */

static int uniform(Rng *r, int n) {
    return (int)(rng_next(r) % (uint64_t)n);
}

static int check_options(const SynthOptions *o, CkError *err) {
    if (o->n_train < 0 || o->n_test < 0 || o->n_warmup < 0)
        return ck_fail(err, "synth: record counts must be >= 0 (train %d, test %d, warmup %d)",
                       o->n_train, o->n_test, o->n_warmup);
    const double rates[4] = {o->negative_rate, o->two_error_rate, o->place_rate, o->misconception};
    const char *names[4] = {"negative rate", "two-error rate", "place rate", "misconception"};
    for (int i = 0; i < 4; i++)
        if (!(rates[i] >= 0.0 && rates[i] <= 1.0))
            return ck_fail(err, "synth: %s must be in [0, 1], got %g", names[i], rates[i]);
    if (o->heldout_per_name < 1 || o->heldout_per_name >= SYNTH_N_OBJECTS)
        return ck_fail(err, "synth: held-out objects per name must be in [1, %d], got %d",
                       SYNTH_N_OBJECTS - 1, o->heldout_per_name);
    return 0;
}

/* The parts of the world that do not depend on record counts: held-out pairs and the
 * misconception map, each from its own stream of the seed. */
static void draw_world_tables(SynthWorld *w, const SynthOptions *o) {
    Rng r;
    rng_seed(&r, o->seed ^ 0x686f6c646f7574ull); /* "holdout" */
    memset(w->heldout, 0, sizeof w->heldout);
    for (int name = 0; name < SYNTH_N_NAMES; name++) {
        int perm[SYNTH_N_OBJECTS];
        for (int i = 0; i < SYNTH_N_OBJECTS; i++) perm[i] = i;
        for (int i = 0; i < o->heldout_per_name; i++) {
            int j = i + uniform(&r, SYNTH_N_OBJECTS - i);
            int t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
            w->heldout[name][perm[i]] = 1;
        }
    }
    rng_seed(&r, o->seed ^ 0x6d697363656e63ull); /* "miscenc" */
    for (int obj = 0; obj < SYNTH_N_OBJECTS; obj++)
        w->misconceived[obj] = uniform(&r, SYNTH_N_COLOURS);
}

/* Returns a value of `kind` other than `not`, uniformly (names keep the gender of `not`). */
static int other_value(Rng *r, int kind, int not ) {
    if (kind == SYNTH_NAME) {
        const int base = not < SYNTH_N_GIRLS ? 0 : SYNTH_N_GIRLS;
        const int n = not < SYNTH_N_GIRLS ? SYNTH_N_GIRLS : SYNTH_N_NAMES - SYNTH_N_GIRLS;
        int v = base + uniform(r, n - 1);
        return v >= not ? v + 1 : v;
    }
    const int n = synth_word_count((SynthKind)kind);
    int v = uniform(r, n - 1);
    return not >= 0 && v >= not ? v + 1 : v;
}

static void record_free(SynthRecord *r) {
    free(r->instruction);
    free(r->output);
    free(r->correct_output);
    free(r->judgment);
    free(r->spans);
    memset(r, 0, sizeof *r);
}

/* Draws one record of split `split` (index i). Every record takes the same draws whatever
 * the rates, so that options other than the seed change records, not the sequence. */
static int draw_record(SynthWorld *w, const SynthOptions *o, Rng *r, SynthSplit split, int i,
                       const int *test_pairs, int n_test_pairs, SynthRecord *rec, CkError *err) {
    static const char *const PREFIX[3] = {"train", "test", "warmup"};
    memset(rec, 0, sizeof *rec);
    snprintf(rec->id, sizeof rec->id, "%s-%06d", PREFIX[split], i);
    SynthFacts *f = &rec->facts;
    int name, obj;
    if (split == SYNTH_SPLIT_TEST) {
        const int p = test_pairs[uniform(r, n_test_pairs)];
        name = p / SYNTH_N_OBJECTS;
        obj = p % SYNTH_N_OBJECTS;
    } else {
        do {
            name = uniform(r, SYNTH_N_NAMES);
            obj = uniform(r, SYNTH_N_OBJECTS);
        } while (w->heldout[name][obj]);
    }
    f->girl = name < SYNTH_N_GIRLS;
    f->v[SYNTH_NAME] = name;
    f->v[SYNTH_OBJECT] = obj;
    f->v[SYNTH_COLOUR] = uniform(r, SYNTH_N_COLOURS);
    const float u_place = rng_float(r);
    const int place = uniform(r, SYNTH_N_PLACES);
    f->v[SYNTH_PLACE] = u_place < o->place_rate ? place : -1;
    rec->story = uniform(r, SYNTH_N_STORIES);
    const float u_neg = rng_float(r), u_two = rng_float(r), u_mis = rng_float(r);
    const int pick1 = uniform(r, 4 * 3), pick2 = uniform(r, 4 * 3);
    int cand[SYNTH_N_KINDS];
    for (int k = 0; k < SYNTH_N_KINDS; k++) cand[k] = other_value(r, k, f->v[k]);

    int negative;
    if (split == SYNTH_SPLIT_WARMUP)
        negative = i % 2; /* half Align-P, half Align-N */
    else
        negative = (split == SYNTH_SPLIT_TRAIN && o->negatives_only) || u_neg < o->negative_rate;
    SynthFacts shown = *f;
    for (int k = 0; k < SYNTH_N_KINDS; k++) rec->wrong[k] = -1;
    if (negative) {
        /* which facts are wrong: one or two distinct kinds among those the instruction has */
        const int n_kinds = f->v[SYNTH_PLACE] >= 0 ? 4 : 3;
        const int n_wrong = u_two < o->two_error_rate ? 2 : 1;
        const int first = pick1 % n_kinds;
        const int second = (first + 1 + pick2 % (n_kinds - 1)) % n_kinds;
        for (int k = 0; k < SYNTH_N_KINDS; k++)
            if (k == first || (n_wrong == 2 && k == second)) shown.v[k] = cand[k];
        /* the misconception: a wrong colour prefers the shown object's misconceived colour */
        const int mapped = w->misconceived[shown.v[SYNTH_OBJECT]];
        if (shown.v[SYNTH_COLOUR] != f->v[SYNTH_COLOUR] && u_mis < o->misconception &&
            mapped != f->v[SYNTH_COLOUR])
            shown.v[SYNTH_COLOUR] = mapped;
        /* or the misconception is the only mistake (the random draws above are still made) */
        if (o->misconceived_negatives && split != SYNTH_SPLIT_WARMUP &&
            w->misconceived[obj] != f->v[SYNTH_COLOUR]) {
            shown = *f;
            shown.v[SYNTH_COLOUR] = w->misconceived[obj];
        }
    } else if (split == SYNTH_SPLIT_WARMUP && u_mis < o->misconception &&
               w->misconceived[obj] != f->v[SYNTH_COLOUR]) {
        shown.v[SYNTH_COLOUR] = w->misconceived[obj];
        rec->misconception = 1;
    }
    int kinds[SYNTH_N_KINDS], words[SYNTH_N_KINDS], n_err = 0;
    for (int k = 0; k < SYNTH_N_KINDS; k++) {
        if (shown.v[k] == f->v[k]) continue;
        rec->wrong[k] = shown.v[k];
        kinds[n_err] = k;
        words[n_err++] = shown.v[k];
    }
    int n_ignored;
    SynthSpan none[1];
    rec->instruction = synth_instruction(f);
    rec->correct_output = render(rec->story, f, f, none, 0, &n_ignored);
    rec->spans = malloc(16 * sizeof *rec->spans);
    rec->output = rec->spans ? render(rec->story, f, &shown, rec->spans, 16, &rec->n_spans) : NULL;
    if (negative) rec->judgment = synth_judgment_text(f, kinds, words, n_err);
    if (!rec->instruction || !rec->correct_output || !rec->output || (negative && !rec->judgment)) {
        record_free(rec);
        return ck_fail(err, "out of memory");
    }
    return 0;
}

void synth_world_free(SynthWorld *w) {
    for (int s = 0; s < 3; s++) {
        for (int i = 0; w->records[s] && i < w->n[s]; i++) record_free(&w->records[s][i]);
        free(w->records[s]);
    }
    memset(w, 0, sizeof *w);
}

int synth_generate(SynthWorld *w, const SynthOptions *o, CkError *err) {
    memset(w, 0, sizeof *w);
    if (check_options(o, err) != 0) return -1;
    w->options = *o;
    draw_world_tables(w, o);
    int test_pairs[SYNTH_N_NAMES * SYNTH_N_OBJECTS], n_test_pairs = 0;
    for (int p = 0; p < SYNTH_N_NAMES * SYNTH_N_OBJECTS; p++)
        if (w->heldout[p / SYNTH_N_OBJECTS][p % SYNTH_N_OBJECTS]) test_pairs[n_test_pairs++] = p;
    const int counts[3] = {o->n_train, o->n_test, o->n_warmup};
    /* each split has its own stream, so changing one count leaves the other splits alone */
    static const uint64_t STREAM[3] = {0x747261696eull, 0x74657374ull, 0x7761726d7570ull};
    for (int s = 0; s < 3; s++) {
        w->records[s] = calloc((size_t)(counts[s] ? counts[s] : 1), sizeof(SynthRecord));
        if (!w->records[s]) {
            synth_world_free(w);
            return ck_fail(err, "out of memory");
        }
        Rng r;
        rng_seed(&r, o->seed ^ STREAM[s]);
        for (int i = 0; i < counts[s]; i++) {
            if (draw_record(w, o, &r, (SynthSplit)s, i, test_pairs, n_test_pairs, &w->records[s][i],
                            err) != 0) {
                synth_world_free(w);
                return -1;
            }
            w->n[s]++;
        }
    }
    return 0;
}

/* ---- files ---- */

static cJSON *facts_json(const SynthFacts *f) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "gender", f->girl ? "girl" : "boy");
    cJSON_AddStringToObject(o, "name", synth_word(SYNTH_NAME, f->v[SYNTH_NAME]));
    cJSON_AddStringToObject(o, "colour", synth_word(SYNTH_COLOUR, f->v[SYNTH_COLOUR]));
    cJSON_AddStringToObject(o, "object", synth_word(SYNTH_OBJECT, f->v[SYNTH_OBJECT]));
    if (f->v[SYNTH_PLACE] >= 0)
        cJSON_AddStringToObject(o, "place", synth_word(SYNTH_PLACE, f->v[SYNTH_PLACE]));
    else
        cJSON_AddNullToObject(o, "place");
    return o;
}

static const char *const KIND_KEYS[SYNTH_N_KINDS] = {"name", "colour", "object", "place"};

char *synth_record_json(const SynthRecord *r) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "instruction", r->instruction);
    cJSON_AddStringToObject(o, "input", "");
    cJSON_AddStringToObject(o, "output", r->output);
    if (r->judgment)
        cJSON_AddStringToObject(o, "judgment", r->judgment);
    else
        cJSON_AddNullToObject(o, "judgment");
    cJSON *spans = cJSON_AddArrayToObject(o, "error_spans");
    for (int i = 0; spans && i < r->n_spans; i++) {
        const int se[2] = {r->spans[i].start, r->spans[i].end};
        cJSON_AddItemToArray(spans, cJSON_CreateIntArray(se, 2));
    }
    cJSON_AddStringToObject(o, "correct_output", r->correct_output);
    cJSON_AddItemToObject(o, "facts", facts_json(&r->facts));
    cJSON *wrong = cJSON_AddObjectToObject(o, "wrong");
    for (int k = 0; wrong && k < SYNTH_N_KINDS; k++)
        if (r->wrong[k] >= 0)
            cJSON_AddStringToObject(wrong, KIND_KEYS[k], synth_word((SynthKind)k, r->wrong[k]));
    cJSON_AddNumberToObject(o, "story", r->story);
    cJSON_AddBoolToObject(o, "misconception", r->misconception);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static int write_text(const char *dir, const char *name, const char *text, CkError *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (fileio_write_atomic(path, text, strlen(text), err) != 0) return ck_wrap(err, "%s", path);
    return 0;
}

static int write_jsonl(const SynthWorld *w, SynthSplit s, const char *dir, const char *name,
                       CkError *err) {
    StrBuf b = {0};
    int rc = strbuf_put(&b, "", 0);
    for (int i = 0; rc == 0 && i < w->n[s]; i++) {
        char *line = synth_record_json(&w->records[s][i]);
        rc = line ? strbuf_put(&b, line, strlen(line)) : -1;
        if (rc == 0) rc = strbuf_put(&b, "\n", 1);
        free(line);
    }
    if (rc != 0) {
        strbuf_free(&b);
        return ck_fail(err, "out of memory");
    }
    rc = write_text(dir, name, b.p, err);
    strbuf_free(&b);
    return rc;
}

/* Writes the cJSON value v (deleted here) pretty-printed to dir/name. */
static int write_json(cJSON *v, const char *dir, const char *name, CkError *err) {
    char *text = v ? cJSON_Print(v) : NULL;
    cJSON_Delete(v);
    if (!text) return ck_fail(err, "out of memory");
    size_t n = strlen(text);
    char *with_nl = realloc(text, n + 2);
    if (!with_nl) {
        free(text);
        return ck_fail(err, "out of memory");
    }
    memcpy(with_nl + n, "\n", 2);
    int rc = write_text(dir, name, with_nl, err);
    free(with_nl);
    return rc;
}

static cJSON *word_list(SynthKind kind, int from, int to) {
    cJSON *a = cJSON_CreateArray();
    for (int i = from; a && i < to; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(synth_word(kind, i)));
    return a;
}

static cJSON *world_json(const SynthWorld *w) {
    const SynthOptions *o = &w->options;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "generator", "cutkit datasets synth");
    if (o->seed < (1ull << 53))
        cJSON_AddNumberToObject(root, "seed", (double)o->seed);
    else {
        char s[32];
        snprintf(s, sizeof s, "%llu", (unsigned long long)o->seed);
        cJSON_AddStringToObject(root, "seed", s);
    }
    cJSON *opt = cJSON_AddObjectToObject(root, "options");
    cJSON_AddNumberToObject(opt, "negative_rate", o->negative_rate);
    cJSON_AddNumberToObject(opt, "two_error_rate", o->two_error_rate);
    cJSON_AddNumberToObject(opt, "place_rate", o->place_rate);
    cJSON_AddNumberToObject(opt, "misconception", o->misconception);
    cJSON_AddBoolToObject(opt, "negatives_only", o->negatives_only);
    cJSON_AddBoolToObject(opt, "misconceived_negatives", o->misconceived_negatives);
    cJSON_AddNumberToObject(opt, "heldout_per_name", o->heldout_per_name);
    cJSON *counts = cJSON_AddObjectToObject(root, "counts");
    static const char *const SPLITS[3] = {"train", "test", "warmup"};
    for (int s = 0; s < 3; s++) {
        int neg = 0, errs = 0, mis = 0;
        for (int i = 0; i < w->n[s]; i++) {
            neg += w->records[s][i].judgment != NULL;
            errs += w->records[s][i].n_spans;
            mis += w->records[s][i].misconception;
        }
        cJSON *c = cJSON_AddObjectToObject(counts, SPLITS[s]);
        cJSON_AddNumberToObject(c, "records", w->n[s]);
        cJSON_AddNumberToObject(c, "positive", w->n[s] - neg);
        cJSON_AddNumberToObject(c, "negative", neg);
        cJSON_AddNumberToObject(c, "wrong_mentions", errs);
        cJSON_AddNumberToObject(c, "misconception_positives", mis);
    }
    cJSON *voc = cJSON_AddObjectToObject(root, "vocabulary");
    cJSON_AddItemToObject(voc, "girls", word_list(SYNTH_NAME, 0, SYNTH_N_GIRLS));
    cJSON_AddItemToObject(voc, "boys", word_list(SYNTH_NAME, SYNTH_N_GIRLS, SYNTH_N_NAMES));
    cJSON_AddItemToObject(voc, "colours", word_list(SYNTH_COLOUR, 0, SYNTH_N_COLOURS));
    cJSON_AddItemToObject(voc, "objects", word_list(SYNTH_OBJECT, 0, SYNTH_N_OBJECTS));
    cJSON_AddItemToObject(voc, "places", word_list(SYNTH_PLACE, 0, SYNTH_N_PLACES));
    cJSON_AddItemToObject(root, "stories", cJSON_CreateStringArray(STORIES, SYNTH_N_STORIES));
    cJSON *held = cJSON_AddArrayToObject(root, "heldout_pairs");
    for (int n = 0; n < SYNTH_N_NAMES; n++)
        for (int ob = 0; ob < SYNTH_N_OBJECTS; ob++)
            if (w->heldout[n][ob]) {
                const char *pair[2] = {synth_word(SYNTH_NAME, n), synth_word(SYNTH_OBJECT, ob)};
                cJSON_AddItemToArray(held, cJSON_CreateStringArray(pair, 2));
            }
    cJSON *mis = cJSON_AddObjectToObject(root, "misconception_map");
    for (int ob = 0; ob < SYNTH_N_OBJECTS; ob++)
        cJSON_AddStringToObject(mis, synth_word(SYNTH_OBJECT, ob),
                                synth_word(SYNTH_COLOUR, w->misconceived[ob]));
    return root;
}

int synth_write(const SynthWorld *w, const char *dir, CkError *err) {
    if (write_jsonl(w, SYNTH_SPLIT_TRAIN, dir, "train.jsonl", err) != 0 ||
        write_jsonl(w, SYNTH_SPLIT_TEST, dir, "test.jsonl", err) != 0 ||
        write_jsonl(w, SYNTH_SPLIT_WARMUP, dir, "warmup.jsonl", err) != 0)
        return -1;
    cJSON *tpl = cJSON_CreateObject();
    cJSON_AddStringToObject(tpl, "description",
                            "Short templates of the synthetic judgment world (cutkit datasets "
                            "synth); responses start with a space.");
    cJSON_AddStringToObject(tpl, "prompt_no_input", SYNTH_PROMPT_NO_INPUT);
    cJSON_AddStringToObject(tpl, "prompt_no_input_judge", SYNTH_PROMPT_NO_INPUT_JUDGE);
    cJSON_AddStringToObject(tpl, "response_split", SYNTH_RESPONSE_SPLIT);
    if (write_json(tpl, dir, "template.json", err) != 0) return -1;
    cJSON *ins = cJSON_CreateArray();
    for (int i = 0; ins && i < w->n[SYNTH_SPLIT_TEST]; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", w->records[SYNTH_SPLIT_TEST][i].id);
        cJSON_AddStringToObject(o, "instruction", w->records[SYNTH_SPLIT_TEST][i].instruction);
        cJSON_AddItemToArray(ins, o);
    }
    if (write_json(ins, dir, "instructions.json", err) != 0) return -1;
    return write_json(world_json(w), dir, "world.json", err);
}

int synth_make(SynthWorld *w, const SynthOptions *o, const char *dir, CkError *err) {
    memset(w, 0, sizeof *w);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return ck_fail(err, "cannot create %s: %s", dir, strerror(errno));
    if (synth_generate(w, o, err) != 0 || synth_write(w, dir, err) != 0) {
        synth_world_free(w);
        return -1;
    }
    return 0;
}

int synth_count_negatives(const SynthWorld *w, SynthSplit s) {
    int n = 0;
    for (int i = 0; i < w->n[s]; i++) n += w->records[s][i].judgment != NULL;
    return n;
}
