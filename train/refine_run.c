/* refine_run.c — see refine_run.h. The steps: read the judgments and keep the negative records
 * (run_load); lock the folder and either start it (refine.json written, no refinements there)
 * or resume it (same settings, the lines there the first records, a torn last line cut); open
 * the model; refine the remaining records one by one, appending and fsyncing each line. */
#include "train/refine_run.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "datasets/judgments.h"
#include "formats/lm.h"
#include "formats/peft.h"
#include "model/generate.h"
#include "train/online_journal.h"
#include "util/fileio.h"
#include "util/json_strict.h"
#include "util/outdir.h"
#include "util/pystr.h"
#include "util/strbuf.h"
#include "util/timer.h"
#include "util/utf8.h"

#define MAX_SETTINGS_BYTES ((size_t)1 << 22)

void refine_run_options_init(RefineRunOptions *o) {
    memset(o, 0, sizeof *o);
    o->judgment_format = "auto";
    o->max_new_tokens = 256;
    o->top_p = 0.9f;
    o->seed = 42;
}

uint64_t refine_record_seed(uint64_t seed, int index) {
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * ((uint64_t)index + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The run's state, released by run_close. */
typedef struct {
    const RefineRunOptions *o;
    RefineRunReport *report;
    JudgmentSet set;
    int *todo; /* [n_todo]: indices into set.records of the records to refine, in file order */
    int n_todo;
    int next; /* the position in todo to refine next (after the resumed lines) */
    RefineTemplate tpl;
    LanguageModel lm;
    int have_lm;
    RunLock lock;
    FILE *f; /* refinements.jsonl, open for appending */
    char settings[4096];
} RefineRun;

/* Reads the judgments and lists the negative records (the first o->limit of them). */
static int run_load(RefineRun *r, CkError *err) {
    const RefineRunOptions *o = r->o;
    JudgmentFormat fmt = judgments_format_from_name(o->judgment_format, o->judgments);
    if (!fmt)
        return ck_fail(err, "judgment format '%s': expected cut, shepherd, jsonl or auto",
                       o->judgment_format);
    if (judgments_load(&r->set, o->judgments, fmt, NULL, err) != 0) return -1;
    r->todo = malloc(sizeof(int) * (size_t)(r->set.n + 1));
    if (!r->todo) return ck_fail(err, "out of memory");
    int n_negative = 0;
    for (int i = 0; i < r->set.n; i++)
        if (r->set.records[i].judgment) r->todo[n_negative++] = i;
    r->n_todo = o->limit > 0 && o->limit < n_negative ? o->limit : n_negative;
    r->report->n_read = r->set.n_read;
    r->report->n_skipped = r->set.n_read - n_negative;
    r->report->n_error = r->set.n_error;
    r->report->n_to_refine = r->n_todo;
    if (o->log)
        fprintf(o->log,
                "%s: %d records, %d negative to refine, %d skipped (%d positive, %d \"$ERROR$\")\n",
                o->judgments, r->set.n_read, n_negative, r->report->n_skipped,
                r->report->n_skipped - r->set.n_error, r->set.n_error);
    return 0;
}

/* The settings that decide the file's bytes (not the limit, not the threads): a resumed run
 * must have the same ones, else its lines would mix two runs. */
static cJSON *settings_json(const RefineRun *r) {
    const RefineRunOptions *o = r->o;
    cJSON *s = cJSON_CreateObject();
    cJSON *t = cJSON_AddObjectToObject(s, "template");
    if (!t) {
        cJSON_Delete(s);
        return NULL;
    }
    cJSON_AddStringToObject(s, "judgments", o->judgments);
    cJSON_AddStringToObject(
        s, "judgment_format",
        judgments_format_name(judgments_format_from_name(o->judgment_format, o->judgments)));
    cJSON_AddStringToObject(s, "model", o->model ? o->model : "embedded:stories260K");
    if (o->tokenizer) cJSON_AddStringToObject(s, "tokenizer", o->tokenizer);
    if (o->adapter) cJSON_AddStringToObject(s, "adapter", o->adapter);
    cJSON_AddStringToObject(t, "prompt_no_input", r->tpl.prompt_no_input);
    cJSON_AddStringToObject(t, "prompt_input", r->tpl.prompt_input);
    cJSON_AddStringToObject(t, "stop", r->tpl.stop);
    cJSON_AddNumberToObject(s, "max_new_tokens", o->max_new_tokens);
    cJSON_AddNumberToObject(s, "temperature", o->temperature);
    cJSON_AddNumberToObject(s, "top_p", o->top_p);
    cJSON_AddBoolToObject(s, "skip_too_long", o->skip_too_long);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    cJSON_AddStringToObject(s, "seed", seed); /* a string: a double would round a u64 */
    return s;
}

/* Fresh run: refuses a folder that holds refinements, writes refine.json. */
static int start_fresh(RefineRun *r, cJSON *want, CkError *err) {
    struct stat st;
    if (stat(r->report->path, &st) == 0 && st.st_size > 0)
        return ck_fail(err,
                       "%s already holds refinements: pass --resume to continue them, or choose "
                       "another --out",
                       r->report->path);
    char *text = cJSON_Print(want);
    if (!text) return ck_fail(err, "out of memory");
    size_t n = strlen(text);
    text[n] = '\n'; /* cJSON_Print's buffer has room: it ends with the NUL we overwrite */
    int rc = fileio_write_atomic(r->settings, text, n + 1, err);
    free(text);
    if (rc != 0) return -1;
    r->f = fopen(r->report->path, "wb");
    if (!r->f) return ck_fail(err, "cannot create %s: %s", r->report->path, strerror(errno));
    return 0;
}

/* Resume: the folder's settings must be these, key by key. */
static int check_settings(const RefineRun *r, const cJSON *want, CkError *err) {
    cJSON *have = json_load_file(r->settings, MAX_SETTINGS_BYTES, err);
    if (!have) return -1;
    int rc = 0;
    const cJSON *w;
    cJSON_ArrayForEach(w, want) {
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(have, w->string);
        if (!h || !cJSON_Compare(h, w, 1)) {
            char *hv = h ? cJSON_PrintUnformatted(h) : NULL, *wv = cJSON_PrintUnformatted(w);
            rc = ck_fail(err,
                         "%s: field \"%s\" is %.120s, this run's is %.120s: resume with the "
                         "same settings, or choose another --out",
                         r->settings, w->string, hv ? hv : "(missing)", wv ? wv : "?");
            free(hv);
            free(wv);
            break;
        }
    }
    cJSON_Delete(have);
    return rc;
}

/* Line k of the file must be the refinement of the record to refine at r->next (under
 * skip_too_long: at r->next or after it, the records between having been skipped); r->next
 * moves past it. */
static int check_line(RefineRun *r, int k, const cJSON *line, CkError *err) {
    const cJSON *index = cJSON_GetObjectItemCaseSensitive(line, "index");
    const cJSON *ins = cJSON_GetObjectItemCaseSensitive(line, "instruction");
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(line, "refinement");
    const char *path = r->report->path;
    if (r->o->skip_too_long && cJSON_IsNumber(index))
        while (r->next + 1 < r->n_todo &&
               r->set.records[r->todo[r->next]].source_index < index->valuedouble)
            r->next++;
    if (r->next >= r->n_todo)
        return ck_fail(err, "%s:%d: more refinements than the %d records to refine", path, k + 1,
                       r->n_todo);
    const int pos = r->next++;
    const JudgmentRecord *rec = &r->set.records[r->todo[pos]];
    if (!cJSON_IsNumber(index) || index->valuedouble != rec->source_index)
        return ck_fail(err, "%s:%d: field \"index\": expected %d (record %d to refine of %s)", path,
                       k + 1, rec->source_index, pos, r->o->judgments);
    if (!cJSON_IsString(ins) || strcmp(ins->valuestring, rec->instruction) != 0)
        return ck_fail(err, "%s:%d: field \"instruction\": expected record %d's of %s", path, k + 1,
                       rec->source_index, r->o->judgments);
    if (!cJSON_IsString(ref))
        return ck_fail(err, "%s:%d: field \"refinement\": expected a string", path, k + 1);
    return 0;
}

/* Resume: the same settings; the lines there (a torn last one cut off) are the first ones. */
static int resume(RefineRun *r, const cJSON *want, CkError *err) {
    if (check_settings(r, want, err) != 0) return -1;
    JournalItems lines;
    if (online_journal_read(&lines, r->report->path, err) != 0) return -1;
    int rc = 0;
    if (lines.n > r->n_todo)
        rc = ck_fail(err, "%s holds %d refinements, more than the %d records to refine",
                     r->report->path, lines.n, r->n_todo);
    for (int k = 0; rc == 0 && k < lines.n; k++) rc = check_line(r, k, lines.items[k], err);
    r->report->n_resumed = rc == 0 ? lines.n : 0;
    online_journal_free(&lines);
    if (rc != 0) return -1;
    r->f = fopen(r->report->path, "ab");
    if (!r->f) return ck_fail(err, "cannot open %s: %s", r->report->path, strerror(errno));
    if (r->o->log && r->report->n_resumed > 0)
        fprintf(r->o->log, "resuming after %d of %d refinements in %s\n", r->report->n_resumed,
                r->n_todo, r->report->path);
    return 0;
}

/* Locks the folder, then starts it or resumes it. */
static int open_out(RefineRun *r, CkError *err) {
    const RefineRunOptions *o = r->o;
    if (fileio_path(r->report->path, sizeof r->report->path, o->out, "refinements.jsonl") != 0 ||
        fileio_path(r->settings, sizeof r->settings, o->out, "refine.json") != 0)
        return ck_fail(err, "%s: path too long", o->out);
    if (outdir_open(&r->lock, o->out, err) != 0) return -1;
    cJSON *want = settings_json(r);
    if (!want) return ck_fail(err, "out of memory");
    struct stat st;
    int rc =
        o->resume && stat(r->settings, &st) == 0 ? resume(r, want, err) : start_fresh(r, want, err);
    cJSON_Delete(want);
    return rc;
}

/* Opens the model, with its adapter merged in. */
static int open_model(RefineRun *r, CkError *err) {
    const RefineRunOptions *o = r->o;
    if (lm_open(&r->lm, o->model, o->tokenizer, err) != 0) return -1;
    r->have_lm = 1;
    if (!o->adapter) return 0;
    LoraAdapters ad;
    if (peft_load(&ad, &r->lm.model, o->adapter, err) != 0) return -1;
    int merged = lora_merge(&r->lm.model, &ad, err);
    lora_free(&ad);
    return merged;
}

/* Collects the generated text and stops the generation once it holds the stop string. */
typedef struct {
    StrBuf text;
    const char *stop;
    size_t stop_len;
    int failed;
} RefineSink;

static int sink_piece(void *ctx, int token, const char *piece, size_t len) {
    (void)token;
    RefineSink *s = ctx;
    if (strbuf_put(&s->text, piece, len) != 0 || strbuf_put(&s->text, "", 0) != 0) {
        s->failed = 1;
        return 1;
    }
    if (!s->stop_len) return 0;
    /* only the new bytes and the stop's length before them can complete a match */
    size_t from = s->text.n > len + s->stop_len ? s->text.n - len - s->stop_len : 0;
    return strstr(s->text.p + from, s->stop) != NULL;
}

/* The refinement of one record: generated after its prompt, cut at the stop string, every
 * ill-formed UTF-8 sequence made U+FFFD (the files downstream must be UTF-8) and stripped.
 * Returns 1 (nothing generated) for a prompt that fills the context under skip_too_long. */
static int refine_one(RefineRun *r, const JudgmentRecord *rec, char **out, int *n_tokens,
                      CkError *err) {
    const RefineRunOptions *o = r->o;
    *out = NULL;
    char *prompt =
        refine_format(&r->tpl, rec->instruction, rec->input, rec->output, rec->judgment, err);
    if (!prompt) return -1;
    if (o->skip_too_long) { /* generate_text would refuse it: it encodes the prompt with BOS */
        int *ids = NULL, n = 0;
        int rc = tokenizer_encode(&r->lm.tokenizer, prompt, 1, 0, &ids, &n, err);
        free(ids);
        if (rc != 0 || n >= r->lm.model.config.seq_len) {
            free(prompt);
            return rc != 0 ? -1 : 1;
        }
    }
    GenerateOptions g = {o->max_new_tokens, o->temperature, o->top_p,
                         refine_record_seed(o->seed, rec->source_index), 1};
    RefineSink sink = {{0}, r->tpl.stop, strlen(r->tpl.stop), 0};
    GenerateStats stats;
    int rc = strbuf_put(&sink.text, "", 0) == 0 ? 0 : ck_fail(err, "out of memory");
    if (rc == 0)
        rc = generate_text(&r->lm.model, &r->lm.tokenizer, prompt, &g, sink_piece, &sink, NULL,
                           &stats, err);
    free(prompt);
    if (rc == 0 && sink.failed) rc = ck_fail(err, "out of memory");
    StrBuf clean = {0};
    if (rc == 0) {
        char *cut = sink.stop_len ? strstr(sink.text.p, sink.stop) : NULL;
        size_t n = cut ? (size_t)(cut - sink.text.p) : sink.text.n;
        size_t start, len;
        if (utf8_put_lossy(&clean, sink.text.p, n) != 0 || strbuf_put(&clean, "", 0) != 0)
            rc = ck_fail(err, "out of memory");
        else {
            pystr_strip(clean.p, clean.n, &start, &len);
            memmove(clean.p, clean.p + start, len);
            clean.p[len] = '\0';
            *out = clean.p;
            *n_tokens = stats.generated_tokens;
        }
    }
    strbuf_free(&sink.text);
    if (rc != 0) strbuf_free(&clean);
    return rc;
}

/* Appends record rec's line to the file, fsync'd. */
static int write_line(RefineRun *r, const JudgmentRecord *rec, const char *refinement,
                      CkError *err) {
    cJSON *line = cJSON_CreateObject();
    int ok = line && cJSON_AddNumberToObject(line, "index", rec->source_index) &&
             cJSON_AddStringToObject(line, "instruction", rec->instruction) &&
             (rec->input ? cJSON_AddStringToObject(line, "input", rec->input)
                         : cJSON_AddNullToObject(line, "input")) &&
             cJSON_AddStringToObject(line, "output", rec->output) &&
             cJSON_AddStringToObject(line, "judgment", rec->judgment) &&
             cJSON_AddStringToObject(line, "refinement", refinement);
    int rc = ok ? online_journal_append(r->f, r->report->path, line, err)
                : ck_fail(err, "out of memory");
    cJSON_Delete(line);
    return rc;
}

static void log_progress(const RefineRun *r, int done, int processed, double t0) {
    if (!r->o->log) return;
    double s = timer_seconds() - t0;
    double eta = processed > 0 ? s / processed * (r->n_todo - done) : 0.0;
    fprintf(r->o->log, "refine: %d/%d (%.0f%%), %ld tokens, %.1f tokens/s, ETA %.0f s\n", done,
            r->n_todo, 100.0 * done / (r->n_todo ? r->n_todo : 1), r->report->tokens,
            s > 0 ? r->report->tokens / s : 0.0, eta);
}

/* Refines records next .. n_todo - 1, stopping between records on a stop request. */
static int refine_all(RefineRun *r, CkError *err) {
    const RefineRunOptions *o = r->o;
    const double t0 = timer_seconds();
    const int first = r->next;
    int new_lines = 0;
    for (int k = first; k < r->n_todo; k++) {
        if ((o->stop && *o->stop) || (o->stop_after > 0 && new_lines >= o->stop_after)) {
            r->report->stopped_early = 1;
            break;
        }
        const JudgmentRecord *rec = &r->set.records[r->todo[k]];
        char *refinement = NULL;
        int n_tokens = 0;
        int rc = refine_one(r, rec, &refinement, &n_tokens, err);
        if (rc < 0) return ck_wrap(err, "%s: record %d", o->judgments, rec->source_index);
        if (rc == 1) {
            r->report->n_too_long++;
            if (o->log)
                fprintf(o->log, "record %d skipped: its prompt fills the model's context of %d\n",
                        rec->source_index, r->lm.model.config.seq_len);
        } else {
            rc = write_line(r, rec, refinement, err);
            free(refinement);
            if (rc != 0) return -1;
            new_lines++;
            r->report->n_written = r->report->n_resumed + new_lines;
            r->report->tokens += n_tokens;
        }
        log_progress(r, k + 1, k + 1 - first, t0);
    }
    r->report->seconds = timer_seconds() - t0;
    return 0;
}

static void run_close(RefineRun *r) {
    if (r->f) fclose(r->f);
    if (r->have_lm) lm_close(&r->lm);
    refine_template_free(&r->tpl);
    free(r->todo);
    judgments_free(&r->set);
    runlock_release(&r->lock);
}

int refine_run(const RefineRunOptions *o, RefineRunReport *report, CkError *err) {
    memset(report, 0, sizeof *report);
    if (!o->judgments || !o->out) return ck_fail(err, "judgments and out are required");
    if (o->max_new_tokens < 1)
        return ck_fail(err, "max_new_tokens must be >= 1, got %d", o->max_new_tokens);
    RefineRun r;
    memset(&r, 0, sizeof r);
    r.o = o;
    r.report = report;
    int rc = run_load(&r, err);
    if (rc == 0)
        rc = o->template_path ? refine_template_load(&r.tpl, o->template_path, err)
                              : refine_template_default(&r.tpl, err);
    if (rc == 0) rc = open_out(&r, err);
    report->n_written = report->n_resumed;
    if (rc == 0 && r.next < r.n_todo) rc = open_model(&r, err);
    if (rc == 0) rc = refine_all(&r, err);
    run_close(&r);
    return rc;
}
