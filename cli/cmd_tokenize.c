/* cmd_tokenize.c — `cutkit tokenize`: JSON lines of text in, JSON arrays of ids out. */
#include <stdio.h>

#include "commands.h"

static struct {
    const char *tokenizer;
    int no_special, decode;
} opt;

static FlagSpec FLAGS[] = {
    {"tokenizer", FLAG_STRING, &opt.tokenizer, NULL, 0, -1,
     "tokenizer.json, a folder holding one, or a llama2.c tokenizer.bin; default: embedded"},
    {"no-special", FLAG_BOOL, &opt.no_special, NULL, 0, -1, "no BOS/EOS or other special tokens"},
    {"decode", FLAG_BOOL, &opt.decode, NULL, 0, -1, "read arrays of ids, write {\"text\": ...}"},
};

static const CommandSpec SPEC = {"tokenize", "encode or decode text, one JSON object per line",
                                 "[--tokenizer PATH] [--no-special] [--decode] < in.jsonl",
                                 NULL, FLAGS, sizeof FLAGS / sizeof FLAGS[0]};

const CommandSpec *cmd_tokenize_spec(void) {
    return &SPEC;
}

int cmd_tokenize(int argc, char **argv) {
    char *positional[1];
    int n_positional;
    int rc = flags_parse(&SPEC, argc, argv, positional, 0, &n_positional);
    if (rc != 0) return rc;
    fprintf(stderr, "cutkit tokenize: not implemented yet\n");
    return 1;
}
