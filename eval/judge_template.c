/* judge_template.c — pairwise judge prompts: cutkit's template JSON (with a prompt inline or
 * an AlpacaEval prompt file beside it), both placeholder syntaxes, and the chat renderings. */
#include "eval/judge_template.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/judge.h"
#include "util/fileio.h"
#include "util/pystr.h"
#include "util/utf8.h"

#define TEMPLATE_MAX_BYTES ((size_t)1 << 24)

static const char *const PLACEHOLDERS[3] = {"instruction", "output_1", "output_2"};

/* Keep identical to eval/templates/pairwise_ab.json (tests/test_judge.c checks). */
const char PAIRWISE_TEMPLATE_DEFAULT_JSON[] =
    "{\n"
    "  \"description\": \"cutkit's pairwise judge prompt in the AlpacaFarm 'Output (a) / Output "
    "(b)' layout (wording cutkit's own). The judge model's log-probabilities of verdict_1 and "
    "verdict_2 after the prompt give preference = 2 - softmax([logp_1, logp_2])[0]. Placeholders: "
    "{instruction}, {output_1}, {output_2}; write {{ and }} for literal braces.\",\n"
    "  \"prompt\": \"Two assistants answered the same instruction. Read both outputs and name the "
    "one that follows the instruction better: the more helpful, correct and complete answer, "
    "whatever its length.\\n\\n### Instruction:\\n{instruction}\\n\\n### Output "
    "(a):\\n{output_1}\\n\\n### Output (b):\\n{output_2}\\n\\n### Best output:\",\n"
    "  \"verdict_1\": \" Output (a)\",\n"
    "  \"verdict_2\": \" Output (b)\"\n"
    "}\n";

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

int judge_syntax_parse(const char *name, JudgeSyntax *s) {
    if (strcmp(name, "cutkit") == 0) return *s = JUDGE_SYNTAX_CUTKIT, 0;
    if (strcmp(name, "alpaca_eval") == 0) return *s = JUDGE_SYNTAX_ALPACA_EVAL, 0;
    return -1;
}

int judge_chat_parse(const char *name, JudgeChat *c) {
    static const char *const NAMES[4] = {"raw", "plain", "chatml", "llama2"};
    for (int k = 0; k < 4; k++)
        if (strcmp(name, NAMES[k]) == 0) return *c = (JudgeChat)k, 0;
    return -1;
}

/* ---- cutkit's placeholders -------------------------------------------------------------- */

char *pairwise_template_format(const char *fmt, const char *instruction, const char *output_1,
                               const char *output_2, CkError *err) {
    const char *values[3] = {instruction, output_1, output_2};
    StrBuf b = {0};
    int rc = strbuf_put(&b, "", 0);
    for (const char *s = fmt; rc == 0 && *s;) {
        if ((s[0] == '{' && s[1] == '{') || (s[0] == '}' && s[1] == '}')) {
            rc = strbuf_put(&b, s, 1);
            s += 2;
        } else if (*s == '}') {
            ck_fail(err, "single '}' at byte %zu of the pairwise template", (size_t)(s - fmt));
            rc = 1;
        } else if (*s == '{') {
            const char *end = strchr(s, '}');
            int which = -1;
            size_t k = end ? (size_t)(end - s - 1) : 0;
            for (int i = 0; end && i < 3; i++)
                if (strlen(PLACEHOLDERS[i]) == k && strncmp(s + 1, PLACEHOLDERS[i], k) == 0)
                    which = i;
            if (which < 0) {
                if (end)
                    ck_fail(err,
                            "unknown placeholder {%.*s} in the pairwise template (known: "
                            "{instruction}, {output_1}, {output_2})",
                            (int)k, s + 1);
                else
                    ck_fail(err, "unterminated '{' at byte %zu of the pairwise template",
                            (size_t)(s - fmt));
                rc = 1;
            } else {
                rc = strbuf_put(&b, values[which], strlen(values[which]));
                s = end + 1;
            }
        } else {
            size_t k = strcspn(s, "{}");
            rc = strbuf_put(&b, s, k);
            s += k;
        }
    }
    if (rc != 0) {
        if (rc < 0) ck_fail(err, "out of memory");
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* ---- AlpacaEval's placeholders ---------------------------------------------------------- */

/* Length of the character at s (1 for a byte that is not UTF-8) and its code point. */
static size_t next_char(const char *s, uint32_t *cp) {
    int n = utf8_scan((const unsigned char *)s, strnlen(s, 4));
    if (n <= 0) {
        *cp = 0xFFFD;
        return 1;
    }
    *cp = utf8_decode((const unsigned char *)s, (size_t)n);
    return (size_t)n;
}

/* Python's {([^ \s]+?)} at s (s[0] == '{'): the length of the name, or 0 for no match. */
static size_t placeholder_at(const char *s) {
    size_t i = 1;
    while (s[i]) {
        uint32_t cp;
        size_t n = next_char(s + i, &cp);
        if (cp == ' ' || pystr_is_space(cp)) return 0;
        if (s[i] == '}' && i > 1) return i - 1; /* at least one character before the '}' */
        i += n;
    }
    return 0;
}

/* The distinct placeholders of tpl in the order they first occur (name offsets and lengths
 * into tpl); fails naming source on an unknown or repeated one. */
static int alpaca_placeholders(const char *tpl, const char *source, size_t at[3], size_t len[3],
                               int order[3], int *n_found, CkError *err) {
    int seen[3] = {0, 0, 0};
    *n_found = 0;
    for (size_t i = 0; tpl[i];) {
        size_t k = tpl[i] == '{' ? placeholder_at(tpl + i) : 0;
        if (!k) {
            i++;
            continue;
        }
        int which = -1;
        for (int p = 0; p < 3; p++)
            if (strlen(PLACEHOLDERS[p]) == k && strncmp(tpl + i + 1, PLACEHOLDERS[p], k) == 0)
                which = p;
        if (which < 0)
            return ck_fail(err,
                           "%s: unknown placeholder {%.*s} (known: {instruction}, {output_1}, "
                           "{output_2})",
                           source, (int)(k > 60 ? 60 : k), tpl + i + 1);
        if (seen[which]++)
            return ck_fail(err, "%s: placeholder {%s} occurs more than once", source,
                           PLACEHOLDERS[which]);
        at[*n_found] = i;
        len[*n_found] = k + 2;
        order[(*n_found)++] = which;
        i += k + 2;
    }
    return 0;
}

char *alpaca_template_format(const char *tpl, const char *instruction, const char *output_1,
                             const char *output_2, const char *source, CkError *err) {
    const char *values[3] = {instruction, output_1, output_2};
    size_t at[3], len[3];
    int order[3], n;
    if (alpaca_placeholders(tpl, source, at, len, order, &n, err) != 0) return NULL;
    char *text = dup_str(tpl);
    for (int k = 0; k < n && text; k++) {
        /* str.replace("{name}", value, 1): the first occurrence in the text so far */
        char key[16];
        snprintf(key, sizeof key, "{%s}", PLACEHOLDERS[order[k]]);
        char *hit = strstr(text, key);
        StrBuf b = {0};
        int rc = strbuf_put(&b, text, (size_t)(hit - text));
        if (rc == 0) rc = strbuf_puts(&b, values[order[k]]);
        if (rc == 0) rc = strbuf_puts(&b, hit + strlen(key));
        free(text);
        text = rc == 0 ? strbuf_take(&b) : NULL;
        strbuf_free(&b);
    }
    if (!text) ck_fail(err, "out of memory");
    return text;
}

/* ---- chat-style prompts ------------------------------------------------------------------ */

#define IM_START "<|im_start|>"
#define IM_END   "<|im_end|>"

void chat_messages_free(ChatMessages *msgs) {
    for (int i = 0; i < msgs->n; i++) {
        free(msgs->m[i].role);
        free(msgs->m[i].name);
        free(msgs->m[i].content);
    }
    free(msgs->m);
    memset(msgs, 0, sizeof *msgs);
}

/* Python's s.strip() of s[0..n) as a new string. */
static char *strip_dup(const char *s, size_t n) {
    size_t start, len;
    pystr_strip(s, n, &start, &len);
    return dup_n(s + start, len);
}

/* The role line of a message: "system name=x" gives role "system" and name x (AlpacaEval's
 * _string_to_dict of the rest: space-separated key=value pairs, of which name is kept). */
static int parse_role(ChatMessage *m, const char *line, size_t n) {
    m->role = strip_dup(line, n);
    if (!m->role) return -1;
    if (strncmp(m->role, "system", 6) != 0 || m->role[6] == '\0') return 0;
    for (char *p = m->role + 6; *p;) {
        size_t k = strcspn(p, " ");
        if (k > 5 && strncmp(p, "name=", 5) == 0 && !(m->name = dup_n(p + 5, k - 5))) return -1;
        p += k;
        while (*p == ' ') p++;
    }
    m->role[6] = '\0';
    return 0;
}

/* Appends the message piece p[0..n) (the text after one "<|im_start|>") to out. */
static int parse_piece(ChatMessages *out, const char *p, size_t n, const char *source,
                       CkError *err) {
    const char *nl = memchr(p, '\n', n);
    if (!nl)
        return ck_fail(err, "%s: a message has no line break after its role \"%.30s\"", source, p);
    ChatMessage *m = realloc(out->m, sizeof *m * (size_t)(out->n + 1));
    if (!m) return ck_fail(err, "out of memory");
    out->m = m;
    m = &out->m[out->n++];
    memset(m, 0, sizeof *m);
    const char *body = nl + 1, *end = p + n;
    /* content: up to the first "<|im_end|>" of the piece */
    for (const char *q = body; q + strlen(IM_END) <= end; q++)
        if (memcmp(q, IM_END, strlen(IM_END)) == 0) {
            end = q;
            break;
        }
    if (parse_role(m, p, (size_t)(nl - p)) != 0 ||
        !(m->content = strip_dup(body, (size_t)(end - body))))
        return ck_fail(err, "out of memory");
    return 0;
}

int chat_messages_parse(ChatMessages *out, const char *prompt, const char *source, CkError *err) {
    memset(out, 0, sizeof *out);
    size_t start, len;
    pystr_strip(prompt, strlen(prompt), &start, &len);
    const char *s = prompt + start;
    size_t ls = strlen(IM_START), le = strlen(IM_END);
    if (len < ls || memcmp(s, IM_START, ls) != 0 || len < le ||
        memcmp(s + len - le, IM_END, le) != 0)
        return ck_fail(err, "%s: a chat prompt starts with %s and ends with %s", source, IM_START,
                       IM_END);
    const char *end = s + len;
    for (const char *p = s + ls; p < end;) {
        const char *next = p;
        while (next + ls <= end && memcmp(next, IM_START, ls) != 0) next++;
        if (next + ls > end) next = end;
        if (parse_piece(out, p, (size_t)(next - p), source, err) != 0) {
            chat_messages_free(out);
            return -1;
        }
        p = next == end ? end : next + ls;
    }
    return 0;
}

/* "System", "User", "Assistant": the role with its first letter in upper case. */
static int put_label(StrBuf *out, const ChatMessage *m) {
    char first = m->role[0] >= 'a' && m->role[0] <= 'z' ? (char)(m->role[0] - 32) : m->role[0];
    int rc = strbuf_put(out, &first, m->role[0] ? 1 : 0);
    if (rc == 0) rc = strbuf_puts(out, m->role[0] ? m->role + 1 : "");
    if (rc == 0 && m->name) rc = strbuf_printf(out, " (%s)", m->name);
    return rc;
}

static int render_plain(StrBuf *out, const ChatMessages *msgs) {
    int rc = 0;
    for (int i = 0; i < msgs->n && rc == 0; i++) {
        rc = put_label(out, &msgs->m[i]);
        if (rc == 0) rc = strbuf_printf(out, ":\n%s\n\n", msgs->m[i].content);
    }
    return rc == 0 ? strbuf_puts(out, "Assistant:") : rc;
}

static int render_chatml(StrBuf *out, const ChatMessages *msgs) {
    int rc = 0;
    for (int i = 0; i < msgs->n && rc == 0; i++)
        rc = strbuf_printf(out, IM_START "%s\n%s" IM_END "\n", msgs->m[i].role, msgs->m[i].content);
    return rc == 0 ? strbuf_puts(out, IM_START "assistant\n") : rc;
}

static int render_llama2(StrBuf *out, const ChatMessages *msgs, const char *source, CkError *err) {
    int sys = msgs->n > 0 && strcmp(msgs->m[0].role, "system") == 0;
    if (msgs->n != sys + 1 || strcmp(msgs->m[sys].role, "user") != 0)
        return ck_fail(err,
                       "%s: the llama2 rendering takes an optional system message and one user "
                       "message, not %d messages",
                       source, msgs->n);
    int rc = strbuf_puts(out, "[INST] ");
    if (rc == 0 && sys) rc = strbuf_printf(out, "<<SYS>>\n%s\n<</SYS>>\n\n", msgs->m[0].content);
    if (rc == 0) rc = strbuf_printf(out, "%s [/INST]", msgs->m[sys].content);
    return rc == 0 ? 0 : ck_fail(err, "out of memory");
}

int chat_render(StrBuf *out, const char *prompt, JudgeChat chat, const char *source, CkError *err) {
    if (chat == JUDGE_CHAT_RAW)
        return strbuf_puts(out, prompt) == 0 ? 0 : ck_fail(err, "out of memory");
    ChatMessages msgs;
    if (chat_messages_parse(&msgs, prompt, source, err) != 0) return -1;
    int rc;
    if (chat == JUDGE_CHAT_LLAMA2)
        rc = render_llama2(out, &msgs, source, err);
    else if ((chat == JUDGE_CHAT_PLAIN ? render_plain(out, &msgs) : render_chatml(out, &msgs)) != 0)
        rc = ck_fail(err, "out of memory");
    else
        rc = 0;
    chat_messages_free(&msgs);
    return rc;
}

/* ---- the template JSON ------------------------------------------------------------------- */

void pairwise_template_free(PairwiseTemplate *t) {
    free(t->prompt);
    free(t->verdict_1);
    free(t->verdict_2);
    free(t->source);
    memset(t, 0, sizeof *t);
}

char *pairwise_template_render(const PairwiseTemplate *t, const char *instruction,
                               const char *output_1, const char *output_2, CkError *err) {
    const char *source = t->source ? t->source : "the pairwise template";
    char *filled =
        t->syntax == JUDGE_SYNTAX_ALPACA_EVAL
            ? alpaca_template_format(t->prompt, instruction, output_1, output_2, source, err)
            : pairwise_template_format(t->prompt, instruction, output_1, output_2, err);
    if (!filled || t->chat == JUDGE_CHAT_RAW) return filled;
    StrBuf b = {0};
    int rc = chat_render(&b, filled, t->chat, source, err);
    free(filled);
    if (rc == 0 && !b.p) rc = strbuf_put(&b, "", 0);
    if (rc != 0) {
        strbuf_free(&b);
        return NULL;
    }
    return strbuf_take(&b);
}

static int take(const cJSON *root, const char *name, const char *source, char **out, CkError *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!cJSON_IsString(v)) return ck_fail(err, "%s: field \"%s\" must be a string", source, name);
    *out = dup_str(v->valuestring);
    return *out ? 0 : ck_fail(err, "out of memory");
}

/* An optional string field naming one of a set: *out keeps its default when absent. */
static int take_choice(const cJSON *root, const char *name, const char *source,
                       int (*parse)(const char *, void *), void *out, const char *choices,
                       CkError *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!v) return 0;
    if (!cJSON_IsString(v) || parse(v->valuestring, out) != 0)
        return ck_fail(err, "%s: field \"%s\" must be one of %s", source, name, choices);
    return 0;
}

static int parse_syntax(const char *s, void *out) {
    return judge_syntax_parse(s, out);
}

static int parse_chat(const char *s, void *out) {
    return judge_chat_parse(s, out);
}

/* Reads the prompt file named by the template's "prompt_file", relative to base_dir (NULL:
 * the working directory), as Python reads text: "\r\n" and "\r" become "\n". */
static int read_prompt_file(PairwiseTemplate *t, const char *name, const char *base_dir,
                            CkError *err) {
    char path[4096];
    if (name[0] == '/' || !base_dir)
        snprintf(path, sizeof path, "%s", name);
    else
        snprintf(path, sizeof path, "%s/%s", base_dir, name);
    char *text = fileio_read_text(path, TEMPLATE_MAX_BYTES, NULL, err);
    if (!text) return -1;
    char *w = text;
    for (const char *r = text; *r; r++) {
        if (*r == '\r') {
            *w++ = '\n';
            if (r[1] == '\n') r++;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    t->prompt = text;
    free(t->source);
    t->source = dup_str(path);
    return t->source ? 0 : ck_fail(err, "out of memory");
}

/* The prompt: "prompt" inline (cutkit's syntax unless "placeholders" says otherwise) or
 * "prompt_file" (AlpacaEval's syntax unless ...). */
static int take_prompt(PairwiseTemplate *t, const cJSON *root, const char *source,
                       const char *base_dir, CkError *err) {
    const cJSON *file = cJSON_GetObjectItemCaseSensitive(root, "prompt_file");
    int inline_prompt = cJSON_GetObjectItemCaseSensitive(root, "prompt") != NULL;
    if (file && inline_prompt)
        return ck_fail(err, "%s: give \"prompt\" or \"prompt_file\", not both", source);
    if (file && !cJSON_IsString(file))
        return ck_fail(err, "%s: field \"prompt_file\" must be a string", source);
    t->syntax = file ? JUDGE_SYNTAX_ALPACA_EVAL : JUDGE_SYNTAX_CUTKIT;
    if (take_choice(root, "placeholders", source, parse_syntax, &t->syntax,
                    "\"cutkit\" or \"alpaca_eval\"", err) != 0 ||
        take_choice(root, "chat", source, parse_chat, &t->chat,
                    "\"raw\", \"plain\", \"chatml\" or \"llama2\"", err) != 0)
        return -1;
    if (file) return read_prompt_file(t, file->valuestring, base_dir, err);
    return take(root, "prompt", source, &t->prompt, err);
}

/* Fills and renders the prompt once, so that a bad template is reported now, not at the
 * first pair: cutkit's syntax errors get the template and field named, the others name the
 * prompt's file themselves. */
static int check_prompt(const PairwiseTemplate *t, const char *source, CkError *err) {
    char *filled = t->syntax == JUDGE_SYNTAX_ALPACA_EVAL
                       ? alpaca_template_format(t->prompt, "i", "a", "b", t->source, err)
                       : pairwise_template_format(t->prompt, "i", "a", "b", err);
    if (!filled)
        return t->syntax == JUDGE_SYNTAX_CUTKIT ? ck_wrap(err, "%s: field \"prompt\"", source) : -1;
    StrBuf b = {0};
    int rc = chat_render(&b, filled, t->chat, t->source, err);
    strbuf_free(&b);
    free(filled);
    return rc;
}

/* Parses the template JSON; a "prompt_file" is read relative to base_dir. */
static int parse_in(PairwiseTemplate *t, const char *json_text, const char *source,
                    const char *base_dir, CkError *err) {
    memset(t, 0, sizeof *t);
    cJSON *root = cJSON_Parse(json_text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        size_t lead = strspn(json_text, " \t\r\n");
        if (json_text[lead] != '{')
            return ck_fail(err,
                           "%s: expected a template JSON object; an AlpacaEval prompt file goes in "
                           "a template's \"prompt_file\", beside \"verdict_1\" and \"verdict_2\"",
                           source);
        return ck_fail(err, "%s: expected a JSON object", source);
    }
    int rc = (t->source = dup_str(source)) ? 0 : ck_fail(err, "out of memory");
    if (rc == 0) rc = take_prompt(t, root, source, base_dir, err);
    if (rc == 0) rc = take(root, "verdict_1", source, &t->verdict_1, err);
    if (rc == 0) rc = take(root, "verdict_2", source, &t->verdict_2, err);
    cJSON_Delete(root);
    if (rc == 0 && (!t->verdict_1[0] || strcmp(t->verdict_1, t->verdict_2) == 0))
        rc =
            ck_fail(err, "%s: verdict_1 and verdict_2 must be different non-empty strings", source);
    if (rc == 0) rc = check_prompt(t, source, err);
    if (rc != 0) pairwise_template_free(t);
    return rc;
}

int pairwise_template_parse(PairwiseTemplate *t, const char *json_text, const char *source,
                            CkError *err) {
    return parse_in(t, json_text, source, NULL, err);
}

int pairwise_template_load(PairwiseTemplate *t, const char *path, CkError *err) {
    if (!path)
        return pairwise_template_parse(t, PAIRWISE_TEMPLATE_DEFAULT_JSON, "built-in template", err);
    memset(t, 0, sizeof *t);
    char *text = fileio_read_text(path, TEMPLATE_MAX_BYTES, NULL, err);
    if (!text) return -1;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    int rc = parse_in(t, text, path, slash ? (dir[0] ? dir : "/") : NULL, err);
    free(text);
    return rc;
}
