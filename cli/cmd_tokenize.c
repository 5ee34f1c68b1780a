/* cmd_tokenize.c — `cutkit tokenize`: JSON lines of text in, JSON arrays of ids out (or, with
 * --decode, arrays of ids in and {"text": ...} out). */
#include <stdio.h>

#include "cli/commands.h"
#include "formats/embedded.h"
#include "tokenizer/tokenize_stream.h"

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

static const CommandSpec SPEC = {
    "tokenize",
    "encode or decode text, one JSON object per line",
    "[--tokenizer PATH] [--no-special] [--decode] < in.jsonl",
    "Encoding reads one JSON object with a \"text\" string per line and writes the array of\n"
    "ids, with the tokenizer's special tokens (e.g. BOS) unless --no-special. Decoding reads\n"
    "one array of ids (or an object with \"ids\") per line and writes {\"text\": ...}; special\n"
    "tokens are printed unless --no-special. Blank lines are skipped; a malformed line stops\n"
    "with its line number and exit status 1.",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0]};

const CommandSpec *cmd_tokenize_spec(void) {
    return &SPEC;
}

int cmd_tokenize(int argc, char **argv) {
    char *positional[1];
    int n_positional;
    int rc = flags_parse(&SPEC, argc, argv, positional, 0, &n_positional);
    if (rc != 0) return rc;
    Tokenizer tok;
    CkError err = {{0}};
    rc = opt.tokenizer ? tokenizer_open(&tok, opt.tokenizer, &err)
                       : embedded_tokenizer_load(&tok, &err);
    if (rc != 0) return cli_fail(&SPEC, 1, &err);
    TokenizeStreamOptions o;
    tokenize_stream_options_init(&o);
    o.decode = opt.decode;
    o.no_special = opt.no_special;
    rc = tokenize_stream(&tok, stdin, stdout, &o, &err);
    tokenizer_free(&tok);
    return rc == 0 ? 0 : cli_fail(&SPEC, 1, &err);
}
