/* test_presets.c — the presets against the reference's released scripts: every value a preset
 * sets (train/presets.c) is in tests/fixtures/reference_scripts.tsv, the table of the scripts'
 * values with the line each comes from; each preset is run through the binary and the
 * OUT/config.json it writes (the settings in effect) is compared with the table row by row.
 * A flag given beside a preset overrides it. With CUTKIT_CUT_REPO naming a clone of
 * wwxu21/CUT, every cited line is checked to hold the text the table quotes. */
#include <cjson/cJSON.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#include "train/presets.h"

/* One row of the table: the command, its --preset, a config.json key, the value, the source
 * (FILE:LINE or prose) and the text that line holds. */
typedef struct {
    const char *command, *preset, *key, *value, *source, *text;
} Row;

static char *dir, *table;
static Row rows[200];
static int n_rows;

static const char *at(const char *rel) {
    static char bufs[4][700];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, rel);
    return b;
}

/* Splits the table (in place) into rows; '#' lines are comments. */
static int read_table(void) {
    table = test_read_file(CUTKIT_SOURCE_DIR "/tests/fixtures/reference_scripts.tsv", NULL);
    if (!table) return -1;
    for (char *line = strtok(table, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        const char **fields[6] = {&rows[n_rows].command, &rows[n_rows].preset, &rows[n_rows].key,
                                  &rows[n_rows].value,   &rows[n_rows].source, &rows[n_rows].text};
        char *p = line;
        for (int k = 0; k < 6; k++) {
            *fields[k] = p;
            char *tab = strchr(p, '\t');
            if (!tab != (k == 5)) return -1; /* exactly six fields */
            if (tab) *tab = '\0', p = tab + 1;
        }
        if (++n_rows == (int)(sizeof rows / sizeof rows[0])) return -1;
    }
    return 0;
}

static const char *JUDGED =
    "{\"instruction\": \"Tell a story about Lily.\", \"output\": \"Lily had a red ball.\", "
    "\"judgment\": null}\n"
    "{\"instruction\": \"Tell a story about Tom.\", \"output\": \"Tom had a blue car.\", "
    "\"judgment\": \"Cars are not blue.\"}\n"
    "{\"instruction\": \"Name a colour.\", \"output\": \"Green.\", \"judgment\": \"$ERROR$\"}\n"
    "{\"instruction\": \"Say hello.\", \"output\": \"Hello!\", \"judgment\": null}\n";

/* A model shape with room for the reference's cutoff (2048 + EOS), and a small one for the
 * online loop's generations; both on the embedded tokenizer's 512 ids. */
static const char *LONG_CONFIG =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 16, \"intermediate_size\": 32, "
    "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"num_key_value_heads\": 2, "
    "\"vocab_size\": 512, \"max_position_embeddings\": 4096, \"rms_norm_eps\": 1e-5}";
static const char *SHORT_CONFIG =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 16, \"intermediate_size\": 32, "
    "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"num_key_value_heads\": 2, "
    "\"vocab_size\": 512, \"max_position_embeddings\": 48, \"rms_norm_eps\": 1e-5}";
static const char *TEMPLATE =
    "{\"prompt_no_input\": \"Q: {instruction}\\nA:\", "
    "\"prompt_no_input_judge\": \"Q: {instruction}\\nJ: {judgment}\\nA:\", "
    "\"response_split\": \"Q:\"}";

static int put(const char *rel, const char *text) {
    return test_write_file(at(rel), text, strlen(text));
}

static int setup(void **state) {
    (void)state;
    dir = test_temp_dir();
    if (!dir || read_table() != 0) return -1;
    if (put("judged.jsonl", JUDGED) || put("long.json", LONG_CONFIG) ||
        put("short.json", SHORT_CONFIG) || put("template.json", TEMPLATE) ||
        put("pool.json", "[\"Hi.\", \"Go on.\"]") ||
        put("stories.txt", "Lily had a red ball. Tom had a blue car. They played.\n") ||
        put("nomatch.jsonl", "{\"instruction\": \"x\", \"output\": \"y\", \"judgment\": null}\n"))
        return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    int rc = test_remove_dir(dir);
    free(dir);
    free(table);
    return rc;
}

/* Runs `cutkit ARGS` in dir; returns its exit status (stderr printed when it is not want). */
static int cutkit(const char *args, int want) {
    char cmd[4096], *err = NULL;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s", dir, CUTKIT_BINARY, args);
    const int status = test_run(cmd, NULL, &err);
    if (status != want) printf("`cutkit %s`: exit %d\n%s\n", args, status, err ? err : "");
    free(err);
    return status;
}

static cJSON *read_config(const char *run) {
    char rel[300];
    snprintf(rel, sizeof rel, "%s/config.json", run);
    char *text = test_read_file(at(rel), NULL);
    assert_non_null(text);
    cJSON *c = cJSON_Parse(text);
    free(text);
    assert_non_null(c);
    return c;
}

/* 1 when the config's item holds the table's value: a boolean as true/false, a string as
 * itself, a number within a part in a million (float fields such as the LoRA dropout). */
static int holds(const cJSON *item, const char *value) {
    if (cJSON_IsBool(item)) return !strcmp(value, cJSON_IsTrue(item) ? "true" : "false");
    if (cJSON_IsString(item)) return !strcmp(item->valuestring, value);
    if (!cJSON_IsNumber(item)) return 0;
    char *end;
    const double v = strtod(value, &end);
    return end != value && !*end && fabs(item->valuedouble - v) <= 1e-6 * fmax(1, fabs(v));
}

/* Compares the rows of (command, preset) with the config.json of run; returns the count. */
static int compare_rows(const char *command, const char *preset, const char *run) {
    cJSON *c = read_config(run);
    int n = 0, bad = 0;
    for (int i = 0; i < n_rows; i++) {
        if (strcmp(rows[i].command, command) || strcmp(rows[i].preset, preset)) continue;
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(c, rows[i].key);
        char *got = item ? cJSON_PrintUnformatted(item) : NULL;
        if (!holds(item, rows[i].value)) {
            printf("%s --preset %s: \"%s\" is %s in config.json, the table (%s) says %s\n", command,
                   preset, rows[i].key, got ? got : "absent", rows[i].source, rows[i].value);
            bad++;
        }
        free(got);
        n++;
    }
    cJSON_Delete(c);
    printf("%s --preset %s: %d settings as the table says\n", command, preset, n - bad);
    assert_int_equal(bad, 0);
    assert_true(n > 0);
    return n;
}

/* The table's value for (command, preset, key), or NULL. */
static const char *table_value(const char *command, const char *preset, const char *key) {
    for (int i = 0; i < n_rows; i++)
        if (!strcmp(rows[i].command, command) && !strcmp(rows[i].preset, preset) &&
            !strcmp(rows[i].key, key))
            return rows[i].value;
    return NULL;
}

/* Every value the presets set is in the table, equal (the key is the flag's name with '_' for
 * '-'), so the table is the whole of each preset. */
static void test_presets_are_in_the_table(void **state) {
    (void)state;
    const char *names[][2] = {
        {"train", "reference-online"},
        {"train", "reference-offline"},
        {"align-online", "reference"},
    };
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const Preset *p = preset_find(names[k][0], names[k][1]);
        assert_non_null(p);
        int n = 0;
        for (int part = 0; part < 2; part++)
            for (const PresetSetting *s = p->parts[part]; s && s->flag; s++, n++) {
                char key[64];
                snprintf(key, sizeof key, "%s", s->flag);
                for (char *c = key; *c; c++)
                    if (*c == '-') *c = '_';
                const char *want = table_value(p->command, p->name, key);
                if (!want)
                    printf("%s %s: --%s is not in the table\n", p->command, p->name, s->flag);
                assert_non_null(want);
                cJSON *as_json = cJSON_Parse(s->value);
                const int same = as_json ? holds(as_json, want) : !strcmp(s->value, want);
                if (!same)
                    printf("%s %s: --%s %s, the table %s\n", p->command, p->name, s->flag, s->value,
                           want);
                cJSON_Delete(as_json);
                assert_true(same);
            }
        printf("%s --preset %s: %d settings, all in the table\n", p->command, p->name, n);
    }
    assert_null(preset_find("train", "online")); /* λ and α only, through cut_preset_options */
    assert_null(preset_find("align-online", "none"));
}

/* Each train preset, run: its config.json holds every value of the table. */
static void test_train_presets_take_effect(void **state) {
    (void)state;
    const char *presets[] = {"online", "offline", "reference-online", "reference-offline"};
    for (size_t k = 0; k < sizeof presets / sizeof presets[0]; k++) {
        char args[1024];
        const int full = preset_find("train", presets[k]) != NULL;
        /* online and offline set λ and α alone: CUT and a short run are asked for here */
        snprintf(args, sizeof args,
                 "train --preset %s --judgments judged.jsonl --init random --config long.json "
                 "--out run-%s --threads 1%s",
                 presets[k], presets[k], full ? "" : " --objective cut --steps 1");
        assert_int_equal(cutkit(args, 0), 0);
        char run[64];
        snprintf(run, sizeof run, "run-%s", presets[k]);
        compare_rows("train", presets[k], run);
    }
    /* the reference run: 2 negatives ("$ERROR$" kept), int(0.25 x 2) = 0 of 2 positives,
     * so 2 examples and one update of the epoch; the cutoff was not capped */
    cJSON *c = read_config("run-reference-online");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(c, "cut_data");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(data, "examples")->valueint, 2);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(data, "error_negatives")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(data, "positives_kept")->valueint, 0);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(c, "steps")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(c, "cutoff_requested")->valueint, 2048);
    cJSON_Delete(c);
}

/* align-online --preset reference: its config.json, written before the first stage, holds the
 * table's values. The judge here matches nothing, so the run ends after its 1000 generations
 * (exit 1: nothing was judged) without training. */
static void test_online_preset_takes_effect(void **state) {
    (void)state;
    assert_int_equal(cutkit("train --init random --config short.json --data stories.txt "
                            "--steps 1 --seq-len 16 --warmup 0 --out base --threads 1",
                            0),
                     0);
    assert_int_equal(
        cutkit("align-online --preset reference --instructions pool.json "
               "--template template.json --model base/model --judge file:nomatch.jsonl "
               "--iterations 1 --threads 1 --out loop",
               1),
        1);
    compare_rows("align-online", "reference", "loop");
    /* the responses were generated greedily and kept as generate.py keeps them */
    char *gen = test_read_file(at("loop/iter-1/generations.jsonl"), NULL);
    assert_non_null(gen);
    int lines = 0;
    for (const char *p = gen; (p = strchr(p, '\n')); p++) lines++;
    assert_int_equal(lines, 1000);
    assert_null(strstr(gen, "\"output\":\" ")); /* stripped */
    free(gen);
}

/* A flag beside a preset wins over it, on the command line and in --settings; --steps takes
 * the place of the preset's epoch. */
static void test_flags_override_a_preset(void **state) {
    (void)state;
    assert_int_equal(put("settings.json", "{\"warmup\": 5, \"lora-r\": 8}"), 0);
    assert_int_equal(cutkit("train --preset reference-online --settings settings.json "
                            "--judgments judged.jsonl --init random --config long.json "
                            "--lr 1e-3 --steps 2 --align-p-ratio off --lora-r 4 --out override "
                            "--threads 1",
                            0),
                     0);
    cJSON *c = read_config("override");
    assert_true(holds(cJSON_GetObjectItemCaseSensitive(c, "lr"), "0.001"));
    assert_true(holds(cJSON_GetObjectItemCaseSensitive(c, "warmup"), "5")); /* settings */
    assert_true(holds(cJSON_GetObjectItemCaseSensitive(c, "lora_r"), "4")); /* flag wins */
    assert_true(holds(cJSON_GetObjectItemCaseSensitive(c, "steps"), "2"));
    assert_null(cJSON_GetObjectItemCaseSensitive(c, "epochs"));
    assert_true(holds(cJSON_GetObjectItemCaseSensitive(c, "align_p_ratio"), "off"));
    assert_true(holds(cJSON_GetObjectItemCaseSensitive(c, "weight_decay"), "0")); /* preset */
    assert_true(holds(cJSON_GetObjectItemCaseSensitive(c, "lora"), "true"));
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(c, "cut_data");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(data, "examples")->valueint, 4);
    cJSON_Delete(c);
}

/* With CUTKIT_CUT_REPO (a clone of wwxu21/CUT, bare or not), every FILE:LINE source of the
 * table holds the text quoted beside it at bb1d5de. */
static void test_citations(void **state) {
    (void)state;
    const char *repo = getenv("CUTKIT_CUT_REPO");
    if (!repo || !*repo) {
        printf("citations not checked: set CUTKIT_CUT_REPO to a clone of wwxu21/CUT\n");
        return;
    }
    int checked = 0, prose = 0;
    for (int i = 0; i < n_rows; i++) {
        char file[200];
        int line, used = 0;
        if (sscanf(rows[i].source, "%199[A-Za-z0-9_./-]:%d%n", file, &line, &used) != 2 ||
            rows[i].source[used]) {
            prose++;
            continue;
        }
        char cmd[1200], *out = NULL;
        snprintf(cmd, sizeof cmd, "git -C '%s' show bb1d5de:'%s' | sed -n '%dp'", repo, file, line);
        assert_int_equal(test_run(cmd, &out, NULL), 0);
        if (!out || !strstr(out, rows[i].text))
            printf("%s: expected \"%s\", the line is: %s\n", rows[i].source, rows[i].text,
                   out ? out : "(none)");
        assert_non_null(out);
        assert_non_null(strstr(out, rows[i].text));
        free(out);
        checked++;
    }
    printf("citations: %d script lines hold the quoted text (%d sources in prose)\n", checked,
           prose);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_presets_are_in_the_table),
        cmocka_unit_test(test_train_presets_take_effect),
        cmocka_unit_test(test_online_preset_takes_effect),
        cmocka_unit_test(test_flags_override_a_preset),
        cmocka_unit_test(test_citations),
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
