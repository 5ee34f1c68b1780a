/* cmd_generate.c — `cutkit generate`: stream text from a model (the embedded one by default). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/compute_flag.h"
#include "formats/lm.h"
#include "model/generate.h"
#include "util/termsafe.h"
#include "util/threads.h"

static struct {
    const char *model, *tokenizer, *prompt, *base_dtype;
    int steps, threads;
    float temperature, top_p;
    uint64_t seed;
    int no_stop;
} opt;

static FlagSpec FLAGS[] = {
    {"model", FLAG_STRING, &opt.model, NULL, 0, -1,
     "llama2.c checkpoint (version 0, 1 or 2) or Hugging Face folder; default: the embedded "
     "stories260K"},
    {"tokenizer", FLAG_STRING, &opt.tokenizer, NULL, 0, -1,
     "tokenizer.json, a folder or a llama2.c tokenizer.bin; default: the model's (beside it), "
     "else the embedded tok512"},
    {"prompt", FLAG_STRING, &opt.prompt, "", 0, -1, "text to continue"},
    {"steps", FLAG_INT, &opt.steps, "256", 0, 1000000, "tokens to generate"},
    {"temperature", FLAG_FLOAT, &opt.temperature, "0", 0, 100, "0 is greedy"},
    {"top-p", FLAG_FLOAT, &opt.top_p, "0.9", 1e-6, 1, "nucleus sampling mass"},
    {"seed", FLAG_U64, &opt.seed, "42", 0, -1, "sampling seed"},
    FLAG_THREADS(&opt.threads),
    FLAG_BASE_DTYPE(&opt.base_dtype),
    {"no-stop", FLAG_BOOL, &opt.no_stop, NULL, 0, -1, "keep going past an end-of-text token"},
};

static const CommandSpec SPEC = {
    "generate",
    "generate text from a prompt (greedy or seeded sampling, KV cache)",
    "[--prompt TEXT] [--steps N] [--temperature T] [--top-p P] [--seed S] [--model PATH]",
    "Streams tokens to stdout as they are made and ends with a line of tokens/s on stderr.\n"
    "Deterministic for a given seed; greedy when --temperature is 0.",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0],
};

const CommandSpec *cmd_generate_spec(void) {
    return &SPEC;
}

/* Writes text to stdout; on a terminal (ctx points to a nonzero int) the ASCII control bytes
 * a model may emit (ESC above all) are written as escapes, newlines and tabs kept. Byte by
 * byte, since a piece may end inside a UTF-8 character that the next one completes; piped
 * output stays exactly what the model made. */
static void put_text(const int *terminal, const char *text, size_t len) {
    if (!*terminal) {
        fwrite(text, 1, len, stdout);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        const unsigned char c = (unsigned char)text[i];
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
}

static int print_piece(void *ctx, int token, const char *piece, size_t len) {
    (void)token;
    put_text(ctx, piece, len);
    fflush(stdout);
    return 0;
}

int cmd_generate(int argc, char **argv) {
    char *positional[1];
    int n_positional;
    int rc = flags_parse(&SPEC, argc, argv, positional, 0, &n_positional);
    if (rc != 0) return rc;
    int threads = threads_set(opt.threads);
    LanguageModel lm;
    CkError err = {{0}};
    WeightDtype held;
    if ((rc = cli_apply_base_dtype(&SPEC, opt.base_dtype, &held)) != 0) return rc;
    if (lm_open_held(&lm, opt.model, opt.tokenizer, held, &err) != 0)
        return cli_fail(&SPEC, 1, &err);
    GenerateOptions gen = {opt.steps, opt.temperature, opt.top_p, opt.seed, !opt.no_stop};
    GenerateStats stats;
    int terminal = isatty(STDOUT_FILENO);
    put_text(&terminal, opt.prompt, strlen(opt.prompt));
    rc = generate_text(&lm.model, &lm.tokenizer, opt.prompt, &gen, print_piece, &terminal, NULL,
                       &stats, &err);
    printf("\n");
    fflush(stdout);
    if (rc != 0) {
        lm_close(&lm);
        return cli_fail(&SPEC, 1, &err);
    }
    fprintf(stderr, "%d tokens in %.3f s: %.1f tokens/s (%d prompt tokens, %d threads, ",
            stats.generated_tokens, stats.seconds,
            stats.seconds > 0 ? stats.generated_tokens / stats.seconds : 0.0, stats.prompt_tokens,
            threads);
    if (held != WEIGHT_F32) fprintf(stderr, "held as %s, ", model_held_name(held));
    termsafe_fputs_line(stderr, lm.model_source); /* a path: printed with its controls escaped */
    fputs(")\n", stderr);
    lm_close(&lm);
    return 0;
}
