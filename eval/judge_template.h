/* judge_template.h — the text of a pairwise judge prompt: cutkit's placeholder syntax,
 * AlpacaEval's (its annotator prompt files read as they are), and the rendering of
 * AlpacaEval's chat-style prompts (`<|im_start|>role ... <|im_end|>`) for a local model.
 * eval/ALPACAEVAL.md documents each form with examples; PairwiseTemplate (eval/judge.h) holds
 * a prompt with its syntax and rendering.
 *
 * AlpacaEval's placeholders (utils.make_prompts): a placeholder is "{" + one or more
 * characters that are not white space + "}", the shortest such run (Python's regular
 * expression {([^ \s]+?)}), so the JSON braces of its prompts, which a line break or a space
 * follows, are text. Each placeholder must occur once; the values are put in one after the
 * other, in the order the placeholders first occur, each at the first occurrence of its
 * "{name}" in the text so far (Python's str.replace(..., 1)): a value that itself holds a
 * later placeholder's "{name}" takes that value in its place, as AlpacaEval's prompts do. */
#ifndef CK_JUDGE_TEMPLATE_H
#define CK_JUDGE_TEMPLATE_H

#include "util/ck_error.h"
#include "util/strbuf.h"

/* How the placeholders of a prompt are written. */
typedef enum {
    JUDGE_SYNTAX_CUTKIT = 0, /* {instruction} ...; "{{" and "}}" for braces; values not re-read */
    JUDGE_SYNTAX_ALPACA_EVAL /* AlpacaEval's, above */
} JudgeSyntax;

/* How a filled prompt becomes the judge model's text. */
typedef enum {
    JUDGE_CHAT_RAW = 0, /* as it is, markers included (AlpacaEval's huggingface_local) */
    JUDGE_CHAT_PLAIN,   /* "System:\n...\n\nUser:\n...\n\nAssistant:" */
    JUDGE_CHAT_CHATML,  /* "<|im_start|>role\ncontent<|im_end|>\n"..., "<|im_start|>assistant\n" */
    JUDGE_CHAT_LLAMA2   /* "[INST] <<SYS>>\nsystem\n<</SYS>>\n\nuser [/INST]" (BOS: tokenizer) */
} JudgeChat;

/* The names used in template files: "cutkit" / "alpaca_eval"; "raw", "plain", "chatml",
 * "llama2". Parsing returns -1 for any other name. */
int judge_syntax_parse(const char *name, JudgeSyntax *s);
int judge_chat_parse(const char *name, JudgeChat *c);

/* Fills AlpacaEval-syntax prompt tpl with the instruction and the two outputs; source names
 * the prompt in messages. Returns a malloc'd string, or NULL with err on a placeholder other
 * than {instruction}, {output_1}, {output_2} ("SOURCE: unknown placeholder {x} ...") or one
 * that occurs twice. */
char *alpaca_template_format(const char *tpl, const char *instruction, const char *output_1,
                             const char *output_2, const char *source, CkError *err);

/* One message of a chat-style prompt. */
typedef struct {
    char *role;    /* "system", "user", "assistant", ... */
    char *name;    /* AlpacaEval's "system name=example_user": "example_user"; else NULL */
    char *content; /* stripped */
} ChatMessage;

typedef struct {
    ChatMessage *m;
    int n;
} ChatMessages;

/* Splits a filled prompt into messages as AlpacaEval's utils.prompt_to_chatml does: the text
 * stripped must start with "<|im_start|>" and end with "<|im_end|>"; each piece after an
 * "<|im_start|>" is a role line (stripped; "system k=v ..." gives role system and its name)
 * and content up to the first "<|im_end|>", stripped. Fails naming source. */
int chat_messages_parse(ChatMessages *out, const char *prompt, const char *source, CkError *err);

/* Releases msgs and zeroes it. */
void chat_messages_free(ChatMessages *msgs);

/* Appends the rendering of a filled prompt in form chat to out (see JudgeChat; eval/
 * ALPACAEVAL.md has each form). JUDGE_CHAT_LLAMA2 takes at most one system message and then
 * one user message. Fails naming source. */
int chat_render(StrBuf *out, const char *prompt, JudgeChat chat, const char *source, CkError *err);

#endif
