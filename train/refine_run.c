/* refine_run.c — see refine_run.h. The steps: read the judgments and keep the negative records
 * (run_load); lock the folder and either start it (refine.json written, no refinements there)
 * or resume it (same settings, the lines there the first records, a torn last line cut); open
 * the model; refine the remaining records a window at a time (refine_all): the window's
 * prompts are encoded, generate_batch decodes them up to `batch` together, and each finished
 * record's line is appended and fsync'd as soon as every record before it has been. */
#include "train/refine_run.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "datasets/judgments.h"
#include "formats/lm.h"
#include "model/generate_batch.h"
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
    o->batch = 16;
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
    LoraAdapters ad; /* the adapter of a held model (have_ad), added at every product */
    int have_ad;
    RunLock lock;
    FILE *f; /* refinements.jsonl, open for appending */
    char settings[4096];
    /* the window being decoded: records win[flushed .. n_win - 1] not yet written */
    struct Pending *win;
    int n_win, flushed;
    int first;     /* r->next when this run began refining */
    int processed; /* records this run finished (written or waiting) or skipped */
    int new_lines; /* lines this run wrote */
    int stopping;  /* a stop request or stop_after ends the run */
    double t0, printed;
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
    /* only when not f32: folders made before the option resume as they were */
    if (o->base_dtype != WEIGHT_F32)
        cJSON_AddStringToObject(s, "base_dtype", model_held_name(o->base_dtype));
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

/* Names the first field of a that b lacks or holds otherwise; a_is_want says which is whose. */
static int settings_differ(const RefineRun *r, const cJSON *a, const cJSON *b, int a_is_want,
                           CkError *err) {
    const cJSON *x;
    cJSON_ArrayForEach(x, a) {
        const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, x->string);
        if (y && cJSON_Compare(x, y, 1)) continue;
        char *xv = cJSON_PrintUnformatted(x), *yv = y ? cJSON_PrintUnformatted(y) : NULL;
        const char *have = a_is_want ? yv : xv, *want = a_is_want ? xv : yv;
        ck_fail(err,
                "%s: field \"%s\" is %.120s, this run's is %.120s: resume with the same "
                "settings, or choose another --out",
                r->settings, x->string, have ? have : "(missing)", want ? want : "(missing)");
        free(xv);
        free(yv);
        return 1;
    }
    return 0;
}

/* Resume: the folder's settings must be these, key by key (a key only one side has, such as
 * "base_dtype" of a folder held in bf16, differs too). */
static int check_settings(const RefineRun *r, const cJSON *want, CkError *err) {
    cJSON *have = json_load_file(r->settings, MAX_SETTINGS_BYTES, err);
    if (!have) return -1;
    int differ = settings_differ(r, want, have, 1, err) || settings_differ(r, have, want, 0, err);
    cJSON_Delete(have);
    return differ ? -1 : 0;
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

/* Opens the model with its adapter (lm_open_adapted: merged, or beside a held model). */
static int open_model(RefineRun *r, CkError *err) {
    const RefineRunOptions *o = r->o;
    if (lm_open_adapted(&r->lm, o->model, o->tokenizer, o->base_dtype, o->adapter, &r->ad,
                        &r->have_ad, err) != 0)
        return -1;
    r->have_lm = 1;
    return 0;
}

/* One record of the window being decoded: its prompt, the bytes decoded so far and, once it
 * has finished, its refinement, waiting until the records before it are written. */
typedef struct Pending {
    RefineRun *r;
    int pos;   /* position in r->todo */
    int *ids;  /* the encoded prompt (BOS first) */
    int n_ids; /* < the model's context */
    StrBuf text;
    char *refinement; /* set when finished; freed once written */
    int n_tokens;
    int oom; /* out of memory while collecting */
    int cut; /* ended by a stop request: incomplete, never written */
} Pending;

/* Collects a piece; ends the record once its text holds the stop string, or at once on a stop
 * request (the record is then dropped: a resume redoes it). */
static int pending_piece(void *ctx, int token, const char *piece, size_t len) {
    (void)token;
    Pending *p = ctx;
    if (strbuf_put(&p->text, piece, len) != 0 || strbuf_put(&p->text, "", 0) != 0) {
        p->oom = 1;
        return 1;
    }
    const char *stop = p->r->tpl.stop;
    const size_t stop_len = strlen(stop);
    /* only the new bytes and the stop's length before them can complete a match */
    size_t from = p->text.n > len + stop_len ? p->text.n - len - stop_len : 0;
    if (stop_len && strstr(p->text.p + from, stop)) return 1;
    const volatile sig_atomic_t *halt = p->r->o->stop;
    if (halt && *halt) p->cut = 1;
    return p->cut;
}

/* The refinement of a finished record: its text cut at the stop string, every ill-formed UTF-8
 * sequence made U+FFFD (the files downstream must be UTF-8), stripped. NULL: out of memory. */
static char *pending_refinement(const Pending *p) {
    const char *text = p->text.p ? p->text.p : "";
    const char *stop = p->r->tpl.stop;
    const char *cut = stop[0] ? strstr(text, stop) : NULL;
    size_t n = cut ? (size_t)(cut - text) : p->text.n;
    StrBuf clean = {0};
    if (utf8_put_lossy(&clean, text, n) != 0 || strbuf_put(&clean, "", 0) != 0) {
        strbuf_free(&clean);
        return NULL;
    }
    size_t start, len;
    pystr_strip(clean.p, clean.n, &start, &len);
    memmove(clean.p, clean.p + start, len);
    clean.p[len] = '\0';
    return clean.p;
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

/* Records done (resumed, written, skipped or finished and waiting), tokens/s and the ETA: at
 * most every 2 s, and once at the end. */
static void log_progress(RefineRun *r, int final) {
    const double now = timer_seconds(), s = now - r->t0;
    if (!r->o->log || (!final && now - r->printed < 2.0)) return;
    r->printed = now;
    const int done = r->first + r->processed;
    const double eta = r->processed > 0 ? s / r->processed * (r->n_todo - done) : 0.0;
    fprintf(r->o->log, "refine: %d/%d (%.0f%%), %ld tokens, %.1f tokens/s, ETA %.0f s\n", done,
            r->n_todo, 100.0 * done / (r->n_todo ? r->n_todo : 1), r->report->tokens,
            s > 0 ? r->report->tokens / s : 0.0, eta);
    fflush(r->o->log);
}

/* Writes the window's finished records that no unfinished one precedes, in order; a stop_after
 * reached before the next line ends the run. */
static int flush_ready(RefineRun *r, CkError *err) {
    const RefineRunOptions *o = r->o;
    while (r->flushed < r->n_win && r->win[r->flushed].refinement) {
        if (o->stop_after > 0 && r->new_lines >= o->stop_after) {
            r->stopping = 1;
            return 0;
        }
        Pending *p = &r->win[r->flushed];
        if (write_line(r, &r->set.records[r->todo[p->pos]], p->refinement, err) != 0) return -1;
        free(p->refinement);
        p->refinement = NULL;
        r->flushed++;
        r->new_lines++;
        r->report->n_written = r->report->n_resumed + r->new_lines;
    }
    return 0;
}

/* generate_batch's on_done: a finished record joins the queue of lines; a stop request ends
 * the run (a non-zero return, which decode_window takes for a stop, not a failure). */
static int pending_done(void *ctx, int index, const GenerateStats *st, CkError *err) {
    (void)index;
    Pending *p = ctx;
    RefineRun *r = p->r;
    if (p->oom) return ck_fail(err, "out of memory");
    if (!p->cut) {
        if (!(p->refinement = pending_refinement(p))) return ck_fail(err, "out of memory");
        strbuf_free(&p->text);
        p->n_tokens = st->generated_tokens;
        r->report->tokens += p->n_tokens;
        r->processed++;
        if (flush_ready(r, err) != 0) return -1;
        log_progress(r, 0);
    }
    if (p->cut || (r->o->stop && *r->o->stop)) r->stopping = 1;
    return r->stopping ? ck_fail(err, "stop requested") : 0;
}

static void window_free(RefineRun *r) {
    for (int k = 0; k < r->n_win; k++) {
        free(r->win[k].ids);
        strbuf_free(&r->win[k].text);
        free(r->win[k].refinement);
    }
    r->n_win = r->flushed = 0;
}

/* Formats and encodes the record at position pos of todo into p. Returns 1 (p unused) for a
 * prompt that fills the context: skipped and counted under skip_too_long, else err says so. */
static int pending_open(RefineRun *r, int pos, Pending *p, CkError *err) {
    const JudgmentRecord *rec = &r->set.records[r->todo[pos]];
    const int ctx = r->lm.model.config.seq_len;
    *p = (Pending){.r = r, .pos = pos};
    char *prompt =
        refine_format(&r->tpl, rec->instruction, rec->input, rec->output, rec->judgment, err);
    int rc =
        prompt ? tokenizer_encode(&r->lm.tokenizer, prompt, 1, 0, &p->ids, &p->n_ids, err) : -1;
    free(prompt);
    if (rc == 0 && p->n_ids < ctx) return 0;
    free(p->ids);
    p->ids = NULL;
    if (rc == 0 && r->o->skip_too_long) {
        r->report->n_too_long++;
        r->processed++;
        if (r->o->log)
            fprintf(r->o->log, "record %d skipped: its prompt fills the model's context of %d\n",
                    rec->source_index, ctx);
        return 1;
    }
    if (rc == 0) ck_fail(err, "the prompt has %d tokens; the model's context is %d", p->n_ids, ctx);
    return ck_wrap(err, "%s: record %d", r->o->judgments, rec->source_index);
}

/* Decodes the window's records together, their lines written in order as they finish. */
static int decode_window(RefineRun *r, CkError *err) {
    GenerateRequest *reqs = calloc((size_t)r->n_win, sizeof *reqs);
    if (!reqs) return ck_fail(err, "out of memory");
    const RefineRunOptions *o = r->o;
    for (int k = 0; k < r->n_win; k++) {
        const JudgmentRecord *rec = &r->set.records[r->todo[r->win[k].pos]];
        GenerateOptions g = {o->max_new_tokens, o->temperature, o->top_p,
                             refine_record_seed(o->seed, rec->source_index), 1};
        reqs[k] = (GenerateRequest){r->win[k].ids, r->win[k].n_ids, g, pending_piece, &r->win[k]};
    }
    GenerateBatchOptions bo;
    generate_batch_options_init(&bo);
    bo.max_batch = o->batch;
    bo.on_done = pending_done;
    bo.lora = r->have_ad ? &r->ad : NULL;
    int rc = generate_batch(&r->lm.model, &r->lm.tokenizer, reqs, r->n_win, &bo, NULL, err);
    free(reqs);
    if (rc == 0 || r->stopping) return 0;
    const JudgmentRecord *lo = &r->set.records[r->todo[r->win[0].pos]],
                         *hi = &r->set.records[r->todo[r->win[r->n_win - 1].pos]];
    return ck_wrap(err, "%s: records %d..%d", o->judgments, lo->source_index, hi->source_index);
}

/* Refines records next .. n_todo - 1 in windows of 64 batches (the prompts of one window
 * encoded at a time), stopping on a stop request or stop_after. */
static int refine_all(RefineRun *r, CkError *err) {
    const RefineRunOptions *o = r->o;
    const int window = o->batch < 1024 ? 64 * o->batch : 65536;
    r->win = calloc((size_t)window, sizeof *r->win);
    if (!r->win) return ck_fail(err, "out of memory");
    r->t0 = r->printed = timer_seconds();
    r->first = r->next;
    int rc = 0, pos = r->next;
    while (rc == 0 && pos < r->n_todo && !r->stopping) {
        if ((o->stop && *o->stop) || (o->stop_after > 0 && r->new_lines >= o->stop_after)) {
            r->stopping = 1;
            break;
        }
        /* a record that cannot be refined ends the window before it, and the run after it */
        CkError open_err = {{0}};
        int failed = 0;
        while (r->n_win < window && pos < r->n_todo && !failed) {
            int got = pending_open(r, pos, &r->win[r->n_win], &open_err);
            failed = got < 0;
            r->n_win += got == 0;
            pos += !failed;
        }
        if (r->n_win > 0) rc = decode_window(r, err);
        window_free(r);
        if (failed && rc == 0 && !r->stopping) {
            if (err) *err = open_err;
            rc = -1;
        }
    }
    r->report->stopped_early = r->stopping;
    r->report->seconds = timer_seconds() - r->t0;
    if (r->first < r->n_todo) log_progress(r, 1);
    return rc;
}

static void run_close(RefineRun *r) {
    if (r->win) window_free(r);
    free(r->win);
    if (r->f) fclose(r->f);
    if (r->have_ad) lora_free(&r->ad);
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
    if (o->batch < 1) return ck_fail(err, "batch must be >= 1, got %d", o->batch);
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
