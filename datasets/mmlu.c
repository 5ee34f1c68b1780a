/* mmlu.c — the MMLU subject table and its CSV files.
 *
 * libcsv reads the rows. It does not count lines, so the text is fed to it one physical line
 * at a time: whatever it reports while a line is being fed happened on that line, which gives
 * every row the line it starts on, even when a quoted field spans several lines. */
#include "datasets/mmlu.h"

#include <csv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/fileio.h"
#include "util/utf8.h"

#define MMLU_MAX_FILE_BYTES ((size_t)64 << 20)
#define MMLU_N_FIELDS       6

/* ---------------------------------------------------------------------------------------- */
/* subjects */

/* The subjects and categories of lm-evaluation-harness's mmlu task group (the SUBJECTS map of
 * lm_eval/tasks/mmlu/_generate_configs.py, the same from v0.4.0 to 2026). */
static const struct {
    const char *name;
    MmluCategory category;
} SUBJECTS[MMLU_N_SUBJECTS] = {
    {"abstract_algebra", MMLU_STEM},
    {"anatomy", MMLU_STEM},
    {"astronomy", MMLU_STEM},
    {"business_ethics", MMLU_OTHER},
    {"clinical_knowledge", MMLU_OTHER},
    {"college_biology", MMLU_STEM},
    {"college_chemistry", MMLU_STEM},
    {"college_computer_science", MMLU_STEM},
    {"college_mathematics", MMLU_STEM},
    {"college_medicine", MMLU_OTHER},
    {"college_physics", MMLU_STEM},
    {"computer_security", MMLU_STEM},
    {"conceptual_physics", MMLU_STEM},
    {"econometrics", MMLU_SOCIAL_SCIENCES},
    {"electrical_engineering", MMLU_STEM},
    {"elementary_mathematics", MMLU_STEM},
    {"formal_logic", MMLU_HUMANITIES},
    {"global_facts", MMLU_OTHER},
    {"high_school_biology", MMLU_STEM},
    {"high_school_chemistry", MMLU_STEM},
    {"high_school_computer_science", MMLU_STEM},
    {"high_school_european_history", MMLU_HUMANITIES},
    {"high_school_geography", MMLU_SOCIAL_SCIENCES},
    {"high_school_government_and_politics", MMLU_SOCIAL_SCIENCES},
    {"high_school_macroeconomics", MMLU_SOCIAL_SCIENCES},
    {"high_school_mathematics", MMLU_STEM},
    {"high_school_microeconomics", MMLU_SOCIAL_SCIENCES},
    {"high_school_physics", MMLU_STEM},
    {"high_school_psychology", MMLU_SOCIAL_SCIENCES},
    {"high_school_statistics", MMLU_STEM},
    {"high_school_us_history", MMLU_HUMANITIES},
    {"high_school_world_history", MMLU_HUMANITIES},
    {"human_aging", MMLU_OTHER},
    {"human_sexuality", MMLU_SOCIAL_SCIENCES},
    {"international_law", MMLU_HUMANITIES},
    {"jurisprudence", MMLU_HUMANITIES},
    {"logical_fallacies", MMLU_HUMANITIES},
    {"machine_learning", MMLU_STEM},
    {"management", MMLU_OTHER},
    {"marketing", MMLU_OTHER},
    {"medical_genetics", MMLU_OTHER},
    {"miscellaneous", MMLU_OTHER},
    {"moral_disputes", MMLU_HUMANITIES},
    {"moral_scenarios", MMLU_HUMANITIES},
    {"nutrition", MMLU_OTHER},
    {"philosophy", MMLU_HUMANITIES},
    {"prehistory", MMLU_HUMANITIES},
    {"professional_accounting", MMLU_OTHER},
    {"professional_law", MMLU_HUMANITIES},
    {"professional_medicine", MMLU_OTHER},
    {"professional_psychology", MMLU_SOCIAL_SCIENCES},
    {"public_relations", MMLU_SOCIAL_SCIENCES},
    {"security_studies", MMLU_SOCIAL_SCIENCES},
    {"sociology", MMLU_SOCIAL_SCIENCES},
    {"us_foreign_policy", MMLU_SOCIAL_SCIENCES},
    {"virology", MMLU_OTHER},
    {"world_religions", MMLU_HUMANITIES},
};

const char *mmlu_subject_name(int s) {
    return s >= 0 && s < MMLU_N_SUBJECTS ? SUBJECTS[s].name : NULL;
}

MmluCategory mmlu_subject_category(int s) {
    return SUBJECTS[s].category;
}

int mmlu_subject_find(const char *name) {
    for (int s = 0; s < MMLU_N_SUBJECTS; s++)
        if (strcmp(SUBJECTS[s].name, name) == 0) return s;
    return -1;
}

const char *mmlu_category_name(MmluCategory c) {
    static const char *const names[MMLU_N_CATEGORIES] = {"stem", "other", "social_sciences",
                                                         "humanities"};
    return c >= 0 && c < MMLU_N_CATEGORIES ? names[c] : NULL;
}

const char *mmlu_split_name(MmluSplit split) {
    static const char *const names[MMLU_N_SPLITS] = {"dev", "val", "test"};
    return split >= 0 && split < MMLU_N_SPLITS ? names[split] : NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* items */

static void item_free(MmluItem *it) {
    free(it->question);
    for (int c = 0; c < MMLU_N_CHOICES; c++) free(it->choices[c]);
    memset(it, 0, sizeof *it);
}

void mmlu_free(MmluSet *set) {
    if (!set) return;
    for (int i = 0; i < set->n; i++) item_free(&set->items[i]);
    free(set->items);
    memset(set, 0, sizeof *set);
}

/* ---------------------------------------------------------------------------------------- */
/* CSV rows */

static const char *const FIELD_NAMES[MMLU_N_FIELDS] = {"question", "A", "B", "C", "D", "answer"};

/* What the libcsv callbacks share while one file is read. */
typedef struct {
    MmluSet *set;
    int subject;
    const char *source;
    int line;     /* the physical line being fed to libcsv */
    int row_line; /* where the current row started; 0 between rows */
    int row;      /* 1-based index of the current row */
    int n_fields; /* fields of the current row so far (those past 6 only counted) */
    char *fields[MMLU_N_FIELDS];
    int failed; /* an error is in err; later callbacks do nothing */
    CkError *err;
} CsvReader;

static void reader_clear_row(CsvReader *r) {
    for (int f = 0; f < MMLU_N_FIELDS && f < r->n_fields; f++) free(r->fields[f]);
    memset(r->fields, 0, sizeof r->fields);
    r->n_fields = 0;
}

static void reader_fail_oom(CsvReader *r) {
    r->failed = 1;
    ck_fail(r->err, "%s: out of memory", r->source);
}

/* libcsv: a field ended (CSV_APPEND_NULL: s is NUL-terminated). */
static void on_field(void *s, size_t len, void *data) {
    CsvReader *r = data;
    if (r->failed) return;
    if (r->row_line == 0) r->row_line = r->line;
    if (s && memchr(s, '\0', len)) { /* Python's csv refuses it too ("line contains NUL") */
        r->failed = 1;
        ck_fail(r->err, "%s:%d: row %d: field %d: a NUL byte", r->source, r->row_line, r->row,
                r->n_fields + 1);
        return;
    }
    if (r->n_fields < MMLU_N_FIELDS) {
        char *copy = malloc(len + 1);
        if (!copy) {
            reader_fail_oom(r);
            return;
        }
        memcpy(copy, s ? s : "", len);
        copy[len] = '\0';
        r->fields[r->n_fields] = copy;
    }
    r->n_fields++;
}

/* Checks the finished row's fields: their count, UTF-8, the answer letter. */
static int check_row(CsvReader *r) {
    if (r->n_fields != MMLU_N_FIELDS)
        return ck_fail(r->err,
                       "%s:%d: row %d: expected 6 fields (question, A, B, C, D, answer), "
                       "found %d",
                       r->source, r->row_line, r->row, r->n_fields);
    for (int f = 0; f < MMLU_N_FIELDS; f++)
        if (!utf8_valid(r->fields[f], strlen(r->fields[f])))
            return ck_fail(r->err, "%s:%d: row %d: field %d (%s): invalid UTF-8", r->source,
                           r->row_line, r->row, f + 1, FIELD_NAMES[f]);
    const char *a = r->fields[MMLU_N_FIELDS - 1];
    if (strlen(a) != 1 || a[0] < 'A' || a[0] > 'D')
        return ck_fail(r->err,
                       "%s:%d: row %d: field 6 (answer): expected A, B, C or D, found \"%.40s\"",
                       r->source, r->row_line, r->row, a);
    return 0;
}

/* libcsv: a row ended (c is the terminating character, -1 at the end of the text). */
static void on_row(int c, void *data) {
    (void)c;
    CsvReader *r = data;
    if (r->failed) return;
    if (r->row_line == 0) r->row_line = r->line;
    if (check_row(r)) {
        r->failed = 1;
        return;
    }
    MmluSet *set = r->set;
    if (set->n == set->cap) {
        int cap = set->cap ? set->cap * 2 : 256;
        MmluItem *items = realloc(set->items, sizeof(MmluItem) * (size_t)cap);
        if (!items) {
            reader_fail_oom(r);
            return;
        }
        set->items = items;
        set->cap = cap;
    }
    MmluItem *it = &set->items[set->n++];
    it->subject = r->subject;
    it->question = r->fields[0];
    for (int k = 0; k < MMLU_N_CHOICES; k++) it->choices[k] = r->fields[1 + k];
    it->answer = r->fields[5][0] - 'A';
    it->line = r->row_line;
    free(r->fields[5]);
    memset(r->fields, 0, sizeof r->fields);
    r->n_fields = 0;
    r->row_line = 0;
    r->row++;
}

/* Python's csv module keeps spaces around fields; libcsv trims them unless told otherwise. */
static int no_space(unsigned char c) {
    (void)c;
    return 0;
}

/* Feeds text to libcsv line by line; returns 0, or -1 with r->err set. */
static int feed_lines(struct csv_parser *p, CsvReader *r, const char *text, size_t len) {
    for (size_t pos = 0; pos < len && !r->failed;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) + 1 : len;
        r->line++;
        /* a row starts on the first line that has anything besides its line break */
        if (r->row_line == 0 && text[pos] != '\n' && text[pos] != '\r') r->row_line = r->line;
        if (csv_parse(p, text + pos, end - pos, on_field, on_row, r) != end - pos && !r->failed) {
            r->failed = 1;
            ck_fail(r->err, "%s:%d: %s", r->source, r->line, csv_strerror(csv_error(p)));
        }
        pos = end;
    }
    if (r->failed) return -1;
    /* libcsv checks an unclosed quote at the end only in its strict mode, which also refuses
     * quotes inside unquoted fields (MMLU has them; Python's csv keeps them): so look at its
     * state, as csv_fini does (2 = FIELD_BEGUN, inside a field, here a quoted one) */
    if (p->quoted && p->pstate == 2)
        return ck_fail(r->err,
                       "%s:%d: row %d: a quoted field is not closed before the end of the file",
                       r->source, r->row_line, r->row);
    if (csv_fini(p, on_field, on_row, r) != 0 && !r->failed) {
        r->failed = 1;
        ck_fail(r->err, "%s: %s", r->source, csv_strerror(csv_error(p)));
    }
    return r->failed ? -1 : 0;
}

int mmlu_parse_csv(MmluSet *set, int subject, const char *text, size_t len, const char *source,
                   CkError *err) {
    if (subject < 0 || subject >= MMLU_N_SUBJECTS)
        return ck_fail(err, "%s: no MMLU subject %d", source, subject);
    if (set->count[subject])
        return ck_fail(err, "%s: subject %s is already loaded", source, SUBJECTS[subject].name);
    struct csv_parser p;
    if (csv_init(&p, CSV_APPEND_NULL) != 0) return ck_fail(err, "%s: out of memory", source);
    csv_set_space_func(&p, no_space);
    CsvReader r = {.set = set, .subject = subject, .source = source, .row = 1, .err = err};
    int n_before = set->n;
    int rc = feed_lines(&p, &r, text, len);
    csv_free(&p);
    reader_clear_row(&r);
    if (rc == 0 && set->n == n_before) rc = ck_fail(err, "%s: no rows", source);
    if (rc) { /* leave set as it was */
        for (int i = n_before; i < set->n; i++) item_free(&set->items[i]);
        set->n = n_before;
        return -1;
    }
    set->first[subject] = n_before;
    set->count[subject] = set->n - n_before;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* loading a data folder */

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Marks the subjects named in the comma-separated list (NULL or "": all). */
static int parse_subjects(const char *list, int wanted[MMLU_N_SUBJECTS], CkError *err) {
    int any = 0;
    memset(wanted, 0, sizeof(int) * MMLU_N_SUBJECTS);
    for (const char *p = list ? list : ""; *p;) {
        size_t n = strcspn(p, ",");
        const char *a = p, *b = p + n;
        while (a < b && *a == ' ') a++;
        while (b > a && b[-1] == ' ') b--;
        char name[64];
        int s = -1;
        if (b > a && (size_t)(b - a) < sizeof name) {
            memcpy(name, a, (size_t)(b - a));
            name[b - a] = '\0';
            s = mmlu_subject_find(name);
        }
        if (s < 0)
            return ck_fail(err,
                           "unknown MMLU subject '%.*s' (names are the CSV files' stems, "
                           "e.g. abstract_algebra)",
                           (int)(b - a) < 64 ? (int)(b - a) : 64, a);
        wanted[s] = any = 1;
        p += n + (p[n] == ',');
    }
    if (!any)
        for (int s = 0; s < MMLU_N_SUBJECTS; s++) wanted[s] = 1;
    return 0;
}

int mmlu_load(MmluSet *set, const char *dir, MmluSplit split, const char *subjects, CkError *err) {
    memset(set, 0, sizeof *set);
    set->split = split;
    const char *sname = mmlu_split_name(split);
    if (!sname) return ck_fail(err, "no MMLU split %d", (int)split);
    int wanted[MMLU_N_SUBJECTS];
    if (parse_subjects(subjects, wanted, err)) return -1;
    char base[4096], path[4200];
    snprintf(base, sizeof base, "%s/%s", dir, sname);
    if (!is_dir(base)) { /* data.tar's layout: dir/data/<split> */
        snprintf(base, sizeof base, "%s/data/%s", dir, sname);
        if (!is_dir(base))
            return ck_fail(err, "%s: no %s/ folder of MMLU CSV files (nor data/%s/)", dir, sname,
                           sname);
    }
    for (int s = 0; s < MMLU_N_SUBJECTS; s++) {
        if (!wanted[s]) continue;
        snprintf(path, sizeof path, "%s/%s_%s.csv", base, SUBJECTS[s].name, sname);
        size_t size = 0;
        char *text = fileio_read_text(path, MMLU_MAX_FILE_BYTES, &size, err);
        int rc = text ? mmlu_parse_csv(set, s, text, size, path, err) : -1;
        free(text);
        if (rc) {
            mmlu_free(set);
            return -1;
        }
    }
    set->split = split;
    return 0;
}
