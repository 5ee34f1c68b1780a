/* fuzz_train_state.c — libFuzzer harness for the train state file (train_state_read, see
 * README.md here). Each input is a whole file image, read for a fixed layout of 8 floats (the
 * one tests/fuzz/make_corpus.py saves its seeds for). A refusal says why and leaves the
 * optimizer as it was; an accepted state then does what a resumed trainer does next, under
 * the sanitizers: the data cursor from the saved words, the schedule's learning rate and one
 * AdamW update, each of which must work or refuse, never overflow. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/corpus.h"
#include "train/optim.h"
#include "train/schedule.h"
#include "train/train_state.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { N = 8 };

/* The checksum would stop almost every mutation at the door; a seed's own checksum is checked
 * by the replay in tests/test_bad_input.c. So the harness re-stamps it: the fields behind it
 * are what is fuzzed. */
static void restamp(uint8_t *image, size_t size) {
    if (size < 32) return;
    uint64_t total = size, h = 0xcbf29ce484222325ull;
    for (size_t i = 32; i < size; i++) h = (h ^ image[i]) * 0x100000001b3ull;
    memcpy(image + 16, &total, 8);
    memcpy(image + 24, &h, 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const TrainLayout layout = {0x6375746B69742121ull, N, "fuzz layout"};
    AdamWConfig cfg = adamw_config_default();
    AdamW opt;
    CkError err = {{0}};
    CHECK(adamw_init(&opt, N, &cfg, &err) == 0);
    uint8_t *image = malloc(size ? size : 1);
    CHECK(image != NULL);
    memcpy(image, data, size);
    restamp(image, size);
    TrainState ts;
    memset(&ts, 0, sizeof ts);
    if (train_state_read(image, size, "train_state", &ts, &layout, &opt, &err) != 0) {
        CHECK(err.msg[0] != '\0');
        CHECK(opt.step == 0 && opt.n_segments == 1);
        free(image);
        adamw_free(&opt);
        return 0;
    }
    free(image);
    CHECK(ts.step >= 0 && ts.epoch >= 0 && opt.step >= 0);
    CHECK(ts.n_rngs >= 0 && ts.n_rngs <= TRAIN_STATE_MAX_RNGS);
    CHECK(ts.n_cursor >= 0 && ts.n_cursor <= TRAIN_STATE_MAX_CURSOR);
    size_t covered = 0;
    for (size_t i = 0; i < opt.n_segments; i++) {
        CHECK(opt.segments[i].begin == covered && opt.segments[i].end > covered);
        covered = opt.segments[i].end;
    }
    CHECK(covered == N);
    if (ts.n_cursor >= 2) {
        CorpusCursor cur;
        if (corpus_cursor_init(&cur, 3, 7, ts.cursor[0], ts.cursor[1], &err) == 0)
            for (int i = 0; i < 7; i++) CHECK(corpus_cursor_next(&cur) < 3);
        corpus_cursor_free(&cur);
    }
    const double lr = schedule_lr(&ts.schedule, ts.step);
    float params[N] = {0}, grads[N] = {1, -1, 0.5f, 0, 2, 1, 1, 1};
    if (adamw_step(&opt, params, grads, lr, &err) != 0) CHECK(err.msg[0] != '\0');
    adamw_free(&opt);
    return 0;
}
