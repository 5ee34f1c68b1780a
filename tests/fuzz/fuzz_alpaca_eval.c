/* fuzz_alpaca_eval.c — libFuzzer harness for AlpacaEval's JSON files (see README.md here):
 * each input is read as an annotations.json (annotations_parse) and as a model_outputs.json
 * (outputs_parse, with and without required outputs). Accepted annotations then go through the
 * win rate and its length-controlled fit and are printed in all four formats, where no raw
 * control character may appear but newlines and tabs (a name from the file cannot drive the
 * terminal) and the JSON form must parse. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/annotations.h"
#include "eval/outputs.h"
#include "eval/winrate_run.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_printed(const WinrateRow *row, WinrateFormat format) {
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    CHECK(f != NULL);
    winrate_rows_print(row, 1, format, f);
    CHECK(fclose(f) == 0);
    for (size_t i = 0; i < len; i++) {
        const unsigned char c = (unsigned char)out[i];
        CHECK((c >= 0x20 && c != 0x7f) || c == '\n' || c == '\t');
    }
    if (format == WINRATE_FORMAT_JSON) {
        cJSON *v = cJSON_ParseWithLength(out, len);
        CHECK(cJSON_IsObject(v));
        cJSON_Delete(v);
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    CkError err = {{0}};
    AnnotationSet s;
    if (annotations_parse(&s, text, size, "annotations.json", &err) != 0) {
        CHECK(err.msg[0] != '\0');
    } else {
        WinrateRow row;
        memset(&row, 0, sizeof row);
        LcOptions lc = {0};
        if (winrate_row_compute(&s, "annotations.json", &lc, 1, &row, &err) == 0)
            for (int f = WINRATE_FORMAT_TABLE; f <= WINRATE_FORMAT_JSON; f++)
                check_printed(&row, (WinrateFormat)f);
        else
            CHECK(err.msg[0] != '\0');
        annotations_free(&s);
    }
    for (int need = 0; need < 2; need++) {
        ModelOutputs o;
        if (outputs_parse(&o, text, size, need, "model_outputs.json", &err) != 0) {
            CHECK(err.msg[0] != '\0');
            continue;
        }
        for (int i = 0; i < o.n; i++) CHECK(o.items[i].instruction && (!need || o.items[i].output));
        outputs_free(&o);
    }
    return 0;
}
