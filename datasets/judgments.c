/* judgments.c — judgment files to records, and records to CUT training sequences. */
#include "datasets/judgments.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/jsonl.h"
#include "util/pyrandom.h"
#include "util/utf8.h"

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static void record_free(JudgmentRecord *r) {
    free(r->instruction);
    free(r->input);
    free(r->output);
    free(r->judgment);
    memset(r, 0, sizeof *r);
}

void judgments_free(JudgmentSet *s) {
    for (int i = 0; i < s->n; i++) record_free(&s->records[i]);
    free(s->records);
    memset(s, 0, sizeof *s);
}

/* The field names of one format; input_key NULL means the format has no input. */
typedef struct {
    const char *instruction_key, *input_key, *output_key, *judgment_key;
    int judgment_nullable; /* null judgment = positive (CUT JSON, generic JSONL) */
    int fixed_score;       /* Shepherd: score = 1 for every record, as the converter sets */
} Fields;

static const Fields CUT_FIELDS = {"instruction", "input", "output", "judgment", 1, 0};
static const Fields SHEPHERD_FIELDS = {"question", NULL, "answer", "feedback", 0, 1};

/* Copies string field `key` of obj into *out (NULL when null and nullable, or when absent
 * and optional). `where` is the "path:LINE" or "path: record N" prefix of messages. */
static int take_field(const cJSON *obj, const char *key, int nullable, int optional,
                      const char *where, char **out, CkError *err) {
    *out = NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return optional ? 0 : ck_fail(err, "%s: missing field \"%s\"", where, key);
    if (nullable && cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v))
        return ck_fail(err, "%s: field \"%s\" must be a string%s", where, key,
                       nullable ? " or null" : "");
    if (!utf8_valid(v->valuestring, strlen(v->valuestring)))
        return ck_fail(err, "%s: field \"%s\" is not valid UTF-8", where, key);
    *out = dup_str(v->valuestring);
    return *out ? 0 : ck_fail(err, "out of memory");
}

/* Fills r from obj per f; on failure r holds nothing. */
static int parse_record(const cJSON *obj, const Fields *f, const char *where, JudgmentRecord *r,
                        CkError *err) {
    memset(r, 0, sizeof *r);
    if (!cJSON_IsObject(obj)) return ck_fail(err, "%s: expected a JSON object", where);
    int rc = take_field(obj, f->instruction_key, 0, 0, where, &r->instruction, err);
    if (rc == 0 && f->input_key) rc = take_field(obj, f->input_key, 1, 1, where, &r->input, err);
    if (rc == 0) rc = take_field(obj, f->output_key, 0, 0, where, &r->output, err);
    if (rc == 0)
        rc = take_field(obj, f->judgment_key, f->judgment_nullable, 0, where, &r->judgment, err);
    if (rc == 0 && f->fixed_score) {
        r->has_score = 1;
        r->score = 1.0;
    } else if (rc == 0) {
        const cJSON *score = cJSON_GetObjectItemCaseSensitive(obj, "score");
        if (score && !cJSON_IsNumber(score))
            rc = ck_fail(err, "%s: field \"score\" must be a number", where);
        else if (score) {
            r->has_score = 1;
            r->score = score->valuedouble;
        }
    }
    /* the reference forces a record rated 7 ("perfect") or above to positive */
    if (rc == 0 && r->has_score && r->score >= 7) {
        free(r->judgment);
        r->judgment = NULL;
    }
    if (rc != 0) record_free(r);
    return rc;
}

/* Counts a well-formed record and moves it into s, or drops it when it is "$ERROR$". */
static int accept_record(JudgmentSet *s, int *cap, JudgmentRecord *r,
                         const JudgmentLoadOptions *opt, CkError *err) {
    s->n_read++;
    if (!r->judgment) {
        s->n_positive++;
    } else {
        s->n_negative++;
        if (!strcmp(r->judgment, "$ERROR$")) {
            s->n_error++;
            if (!opt->keep_error) {
                record_free(r);
                return 0;
            }
        }
    }
    if (s->n == *cap) {
        int ncap = *cap ? 2 * *cap : 256;
        JudgmentRecord *grown = realloc(s->records, (size_t)ncap * sizeof *grown);
        if (!grown) {
            record_free(r);
            return ck_fail(err, "out of memory");
        }
        s->records = grown;
        *cap = ncap;
    }
    s->records[s->n++] = *r;
    return 0;
}

static int load_json_array(JudgmentSet *s, const char *path, const char *text,
                           const JudgmentLoadOptions *opt, CkError *err) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        int line = 1;
        for (const char *p = text; end && p < end; p++) line += *p == '\n';
        return ck_fail(err, "%s:%d: invalid JSON", path, line);
    }
    if (!cJSON_IsArray(root)) {
        cJSON_Delete(root);
        return ck_fail(err, "%s: expected a JSON array of records", path);
    }
    int rc = 0, cap = 0, index = 0;
    for (const cJSON *item = root->child; rc == 0 && item; item = item->next, index++) {
        char where[600];
        snprintf(where, sizeof where, "%s: record %d", path, index);
        JudgmentRecord r;
        if (parse_record(item, &CUT_FIELDS, where, &r, err) != 0) {
            if (opt->skip_bad) {
                s->n_skipped++;
                continue;
            }
            rc = -1;
            break;
        }
        r.source_index = index;
        rc = accept_record(s, &cap, &r, opt, err);
    }
    cJSON_Delete(root);
    return rc;
}

/* One record per non-blank line; its index in the file is its line number minus one, as
 * known_errors.c counts it too. */
static int load_jsonl(JudgmentSet *s, const char *path, const char *text, size_t len,
                      const Fields *f, const JudgmentLoadOptions *opt, CkError *err) {
    JsonlCursor cur;
    jsonl_init(&cur, text, len);
    const char *line;
    size_t n;
    int rc = 0, cap = 0;
    while (rc == 0 && jsonl_next_line(&cur, &line, &n)) {
        char where[600];
        snprintf(where, sizeof where, "%s:%ld", path, cur.line);
        cJSON *obj = cJSON_ParseWithLength(line, n);
        JudgmentRecord r;
        int bad =
            obj ? parse_record(obj, f, where, &r, err) : ck_fail(err, "%s: invalid JSON", where);
        cJSON_Delete(obj);
        if (bad != 0 && opt->skip_bad) {
            s->n_skipped++;
        } else if (bad != 0) {
            rc = -1;
        } else {
            r.source_index = (int)cur.line - 1;
            rc = accept_record(s, &cap, &r, opt, err);
        }
    }
    return rc;
}

JudgmentFormat judgments_format_from_name(const char *name, const char *path) {
    const size_t len = path ? strlen(path) : 0;
    if (!strcmp(name, "auto"))
        return len > 6 && !strcmp(path + len - 6, ".jsonl") ? JUDGMENTS_JSONL : JUDGMENTS_CUT_JSON;
    for (int f = JUDGMENTS_CUT_JSON; f <= JUDGMENTS_JSONL; f++)
        if (!strcmp(name, judgments_format_name((JudgmentFormat)f))) return (JudgmentFormat)f;
    return (JudgmentFormat)0;
}

const char *judgments_format_name(JudgmentFormat fmt) {
    static const char *const NAMES[] = {"", "cut", "shepherd", "jsonl"};
    return fmt >= JUDGMENTS_CUT_JSON && fmt <= JUDGMENTS_JSONL ? NAMES[fmt] : "";
}

int judgments_load(JudgmentSet *s, const char *path, JudgmentFormat fmt,
                   const JudgmentLoadOptions *opt, CkError *err) {
    memset(s, 0, sizeof *s);
    JudgmentLoadOptions defaults = {0, 0};
    if (!opt) opt = &defaults;
    size_t len = 0;
    char *text = fileio_read_text(path, (size_t)1 << 31, &len, err);
    if (!text) return -1;
    int rc;
    if (fmt == JUDGMENTS_CUT_JSON)
        rc = load_json_array(s, path, text, opt, err);
    else if (fmt == JUDGMENTS_SHEPHERD)
        rc = load_jsonl(s, path, text, len, &SHEPHERD_FIELDS, opt, err);
    else if (fmt == JUDGMENTS_JSONL)
        rc = load_jsonl(s, path, text, len, &CUT_FIELDS, opt, err);
    else
        rc = ck_fail(err, "%s: unknown judgment format %d", path, (int)fmt);
    free(text);
    if (rc != 0) judgments_free(s);
    return rc;
}

/* ---- example construction (cut-spec §1.3-1.4) ---- */

static void sequence_free(CutSequence *q) {
    free(q->tokens);
    free(q->trained);
    memset(q, 0, sizeof *q);
}

void judgments_example_free(CutExample *ex) {
    sequence_free(&ex->a);
    sequence_free(&ex->m);
    memset(ex, 0, sizeof *ex);
}

/* Returns prompt + response in a new string, or NULL when out of memory. */
static char *concat(const char *prompt, const char *response) {
    size_t lp = strlen(prompt), lr = strlen(response);
    char *full = malloc(lp + lr + 1);
    if (!full) return NULL;
    memcpy(full, prompt, lp);
    memcpy(full + lp, response, lr + 1);
    return full;
}

/* Tokenizes prompt + response as the reference's tokenize() and generate_and_tokenize_prompt
 * do (train_on_inputs False, add_eos_token False for the prompt alone). */
static int build_sequence(const char *prompt, const char *response, const Tokenizer *t, int cutoff,
                          CutSequence *q, CkError *err) {
    memset(q, 0, sizeof *q);
    char *full = concat(prompt, response);
    if (!full) return ck_fail(err, "out of memory");
    int *ids = NULL, n = 0, *pids = NULL, np = 0;
    /* jointly: tokenizing the response alone would give its first token a dummy prefix */
    int rc = tokenizer_encode(t, full, 1, 0, &ids, &n, err);
    if (rc == 0) rc = tokenizer_encode(t, prompt, 1, 0, &pids, &np, err);
    free(full);
    free(pids);
    if (rc != 0) {
        free(ids);
        return -1;
    }
    /* The reference truncates first (keeping the last cutoff tokens, so the response stays
     * whole) and appends EOS after, unless the text already ends with it: a sequence may be
     * cutoff + 1 long. Appending EOS before truncating, as cutkit once did, cost BOS or a
     * response token at the cutoff. */
    const int over_full = cutoff > 0 && n > cutoff ? n - cutoff : 0;
    const int over_prompt = cutoff > 0 && np > cutoff ? np - cutoff : 0;
    const int kept = n - over_full;
    const int add_eos = t->eos_id >= 0 && (kept == 0 || ids[n - 1] != t->eos_id);
    q->n = kept + add_eos;
    q->n_cut = over_full;
    /* the prompt alone is truncated too, so its overflow is subtracted back out; <= 0 masks
     * nothing, and below 0 the cutoff also cut into the response */
    q->prompt_len = (np - over_prompt) - (over_full - over_prompt);
    q->tokens = malloc((size_t)(q->n ? q->n : 1) * sizeof(int));
    q->trained = malloc((size_t)(q->n ? q->n : 1));
    if (!q->tokens || !q->trained) {
        free(ids);
        sequence_free(q);
        return ck_fail(err, "out of memory");
    }
    memcpy(q->tokens, ids + over_full, (size_t)kept * sizeof(int));
    if (add_eos) q->tokens[kept] = t->eos_id;
    for (int i = 0; i < q->n; i++) q->trained[i] = i >= q->prompt_len;
    free(ids);
    return 0;
}

static int response_len(const CutSequence *q) {
    return q->prompt_len > 0 ? q->n - q->prompt_len : q->n;
}

/* Fills the prompts of record r: *plain always, *judge for a negative record. */
static int fill_prompts(const Template *tpl, const JudgmentRecord *r, char **plain, char **judge,
                        CkError *err) {
    *plain = *judge = NULL;
    char *instruction = template_join_input(r->instruction, r->input);
    if (!instruction) return ck_fail(err, "out of memory");
    *plain = template_format(tpl->prompt_no_input, instruction, NULL, err);
    int rc = *plain ? 0 : ck_wrap(err, "prompt_no_input");
    if (rc == 0 && r->judgment) {
        *judge = template_format(tpl->prompt_no_input_judge, instruction, r->judgment, err);
        if (!*judge) rc = ck_wrap(err, "prompt_no_input_judge");
    }
    free(instruction);
    return rc;
}

int judgments_build_reference_example(const Template *tpl, const JudgmentRecord *r,
                                      const Tokenizer *t, int cutoff, CutExample *ex,
                                      CkError *err) {
    memset(ex, 0, sizeof *ex);
    char *plain, *judge;
    int rc = fill_prompts(tpl, r, &plain, &judge, err);
    ex->negative = r->judgment != NULL;
    if (rc == 0 && ex->negative) {
        rc = build_sequence(judge, r->output, t, cutoff, &ex->a, err);
        if (rc == 0) rc = build_sequence(plain, r->output, t, cutoff, &ex->m, err);
    } else if (rc == 0) {
        rc = build_sequence(plain, r->output, t, cutoff, &ex->a, err);
    }
    if (rc == 0) ex->n_response = response_len(&ex->a);
    /* the per-token comparison of Align-N and Misalign needs the responses index-aligned */
    if (rc == 0 && ex->negative) {
        int k = response_len(&ex->m);
        if (k != ex->n_response ||
            memcmp(ex->a.tokens + ex->a.n - k, ex->m.tokens + ex->m.n - k, (size_t)k * sizeof(int)))
            rc = ck_fail(err,
                         "record %d: the response tokenizes differently after the judge "
                         "template (%d tokens) and the plain template (%d tokens)",
                         r->source_index, ex->n_response, k);
    }
    free(plain);
    free(judge);
    if (rc != 0) judgments_example_free(ex);
    return rc;
}

int judgments_build_example(const Template *tpl, const JudgmentRecord *r, const Tokenizer *t,
                            int max_len, CutExample *ex, CkError *err) {
    if (max_len == 1) {
        memset(ex, 0, sizeof *ex);
        return ck_fail(err, "a length limit of 1 token leaves no room for EOS");
    }
    return judgments_build_reference_example(tpl, r, t, max_len > 0 ? max_len - 1 : 0, ex, err);
}

int judgments_downsample(const JudgmentSet *s, double ratio, uint64_t seed, unsigned char *keep) {
    int n_neg = 0, n_pos = 0;
    for (int i = 0; i < s->n; i++) {
        keep[i] = 1;
        if (s->records[i].judgment)
            n_neg++;
        else
            n_pos++;
    }
    /* int(n_neg * ratio) < n_pos exactly when n_neg * ratio < n_pos (n_pos is whole) */
    const double want = ratio * n_neg;
    if (!(ratio >= 0) || !(want < n_pos)) return s->n;
    const int n_keep = (int)want;
    int *pos = malloc((size_t)n_pos * sizeof(int));
    int *chosen = malloc((size_t)(n_keep > 0 ? n_keep : 1) * sizeof(int));
    PyRandom rng;
    pyrandom_seed(&rng, seed);
    if (!pos || !chosen || pyrandom_sample(&rng, n_pos, n_keep, chosen) != 0) {
        free(pos);
        free(chosen);
        return -1;
    }
    int k = 0;
    for (int i = 0; i < s->n; i++)
        if (!s->records[i].judgment) {
            keep[i] = 0;
            pos[k++] = i;
        }
    /* the reference samples from its list of positive indices, in file order */
    for (int i = 0; i < n_keep; i++) keep[pos[chosen[i]]] = 1;
    free(pos);
    free(chosen);
    return n_neg + n_keep;
}

void judgments_build_options_init(CutBuildOptions *o) {
    memset(o, 0, sizeof *o);
    o->cutoff = 2048;      /* fine-tuning-unlike.sh --cutoff_len 2048 */
    o->align_p_ratio = -1; /* the reference's --downsample default: off */
    o->align_p_seed = 42;  /* finetune_unlikelihood.py: random.seed(42) at import */
}

void judgments_example_set_free(CutExampleSet *set) {
    for (int i = 0; i < set->n; i++) judgments_example_free(&set->examples[i]);
    free(set->examples);
    free(set->record);
    memset(set, 0, sizeof *set);
}

/* Counts what the cutoff did to example ex of record r. */
static void count_example(CutBuildStats *st, const JudgmentRecord *r, const CutExample *ex) {
    st->n_examples++;
    if (!ex->negative) {
        st->n_positive_kept++;
    } else if (!strcmp(r->judgment, "$ERROR$")) {
        st->n_error++;
    }
    const CutSequence *seqs[2] = {&ex->a, ex->negative ? &ex->m : NULL};
    for (int k = 0; k < 2 && seqs[k]; k++) {
        st->n_truncated += seqs[k]->n_cut > 0;
        st->n_response_cut += seqs[k]->prompt_len < 0;
    }
    if (ex->negative && ex->a.n == ex->m.n &&
        !memcmp(ex->a.tokens, ex->m.tokens, (size_t)ex->a.n * sizeof(int)))
        st->n_judgment_lost++;
}

int judgments_build_examples(const JudgmentSet *s, const Template *tpl, const Tokenizer *t,
                             const CutBuildOptions *o, CutExampleSet *out, CkError *err) {
    memset(out, 0, sizeof *out);
    CutBuildOptions defaults;
    judgments_build_options_init(&defaults);
    if (!o) o = &defaults;
    unsigned char *keep = malloc((size_t)(s->n > 0 ? s->n : 1));
    const int n_kept = keep ? judgments_downsample(s, o->align_p_ratio, o->align_p_seed, keep) : -1;
    if (n_kept >= 0) {
        out->examples = calloc((size_t)(n_kept > 0 ? n_kept : 1), sizeof *out->examples);
        out->record = malloc((size_t)(n_kept > 0 ? n_kept : 1) * sizeof *out->record);
    }
    if (n_kept < 0 || !out->examples || !out->record) {
        free(keep);
        judgments_example_set_free(out);
        return ck_fail(err, "out of memory");
    }
    CutBuildStats *st = &out->stats;
    st->n_records = s->n;
    int rc = 0;
    for (int i = 0; rc == 0 && i < s->n; i++) {
        const JudgmentRecord *r = &s->records[i];
        if (r->judgment)
            st->n_negative++;
        else
            st->n_positive++;
        if (!keep[i]) continue;
        CutExample *ex = &out->examples[out->n];
        rc = judgments_build_reference_example(tpl, r, t, o->cutoff, ex, err);
        if (rc != 0) break;
        out->record[out->n++] = i;
        count_example(st, r, ex);
    }
    free(keep);
    if (rc != 0) judgments_example_set_free(out);
    return rc;
}
