/* loglik.h — log-likelihood of continuations given contexts, as lm-evaluation-harness computes
 * it for `loglikelihood` requests (its TemplateLM._encode_pair and HFLM._loglikelihood_tokens):
 *
 *  1. trailing whitespace of the context moves to the front of the continuation;
 *  2. context_enc = encode(context), whole = encode(context + continuation), and the
 *     continuation's tokens are whole[len(context_enc):] (the split is taken from the joint
 *     encoding). BOS is prepended when asked (the harness's add_bos_token; cutkit's default);
 *  3. the model reads (context_enc + continuation_enc)[-(seq_len + 1):][:-1], i.e. left
 *     truncation to the model's context, and the continuation's log-probs are summed (double);
 *     is_greedy says whether every continuation token was the first maximal logit.
 *
 * Where a token of the joint encoding spans the join (whole[:len(context_enc)] differs from
 * context_enc), the harness's split would score a clipped or empty continuation (it asserts on
 * empty ones); here the continuation is then encoded alone (no special tokens) after
 * context_enc, and the request is flagged `fallback` for the caller to warn about.
 *
 * Prefix reuse: requests that share their context tokens (the choices of one question; with
 * left truncation, those that lose the same tokens) run the context once, and all continuations as
 * branches after it: prefix and branches in one tree forward (model_forward_tree) when they fit the
 * activations, else the prefix into a KV cache and the branches in batched forwards
 * (model_forward_branches). The results equal the separate passes up to float rounding
 * (tests/test_loglik.c checks 1e-5). In the automatic mode a group is reused when it saves at least
 * LOGLIK_REUSE_MIN_SAVED tokens, (choices - 1) * (context tokens - 1), or when its choices would
 * not fit one packed forward anyway; below that the two cost the same within noise
 * (bench/bench_mc.c --context). */
#ifndef CK_LOGLIK_H
#define CK_LOGLIK_H

#include "util/ck_error.h"
#include "model/lora.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

/* LoglikScorer.prefix_reuse: never, when it saves enough (see above), always. */
enum { LOGLIK_REUSE_OFF = 0, LOGLIK_REUSE_AUTO = 1, LOGLIK_REUSE_ALWAYS = 2 };

/* Context tokens a reused group must save, in the automatic mode (measured on stories15M). */
#define LOGLIK_REUSE_MIN_SAVED 8

/* A context, encoded once for all of its continuations. */
typedef struct {
    char *text;  /* the context without its trailing whitespace */
    char *moved; /* that trailing whitespace, which starts every continuation */
    int *ids;    /* encode(text), BOS first when bos */
    int n;
    int bos;
} LoglikContext;

/* One request: the context's tokens followed by the continuation's. */
typedef struct {
    int *tokens; /* [n_ctx + n_cont] (owned) */
    int n_ctx;
    int n_cont;
    int fallback; /* 1: a token spanned the join; the continuation was encoded alone */
} LoglikRequest;

/* What the harness returns for a request, with counts. */
typedef struct {
    double logprob; /* sum of log p(continuation token | everything before it) */
    int is_greedy;  /* 1: every continuation token is the first argmax of its logits */
    int n_tokens;   /* continuation tokens */
    int truncated;  /* context tokens dropped on the left to fit the model */
} LoglikResult;

/* Encodes context (non-empty after removing trailing whitespace) into c; with bos the
 * tokenizer's special tokens are added as Hugging Face encode(add_special_tokens) does. */
int loglik_context_init(LoglikContext *c, const Tokenizer *t, const char *context, int bos,
                        CkError *err);

/* Releases what c owns; safe on a zeroed context. */
void loglik_context_free(LoglikContext *c);

/* Builds the request (c's context, continuation) with the harness's joint-encoding split, or the
 * fallback described above; refuses a continuation that encodes to no tokens. */
int loglik_request_init(LoglikRequest *r, const Tokenizer *t, const LoglikContext *c,
                        const char *continuation, CkError *err);

/* Releases the request's tokens; safe on a zeroed request. */
void loglik_request_free(LoglikRequest *r);

/* Working memory for scoring with one model (and optional LoRA adapters). */
typedef struct {
    const Model *model;
    const LoraAdapters *lora; /* NULL: none */
    int prefix_reuse;         /* LOGLIK_REUSE_*: shared contexts run once */
    int max_seqs;             /* sequences packed into one forward without reuse */
    Activations act;
    KVCache cache;
    int block_rows;  /* classifier rows per GEMM */
    float *stage;    /* (block_rows, C) gathered classifier inputs */
    float *logits;   /* (block_rows, V) */
    int *targets;    /* (act.max_tokens) per packed position, -1 = none */
    int max_offsets; /* sequences one forward may pack: max(max_seqs, act.max_tokens) */
    int *offsets;    /* (max_offsets + 1) */
    int *tokens;     /* (act.max_tokens) packed inputs */
    int *greedy;     /* (act.max_tokens) */
    double *lp;      /* (act.max_tokens) */
} LoglikScorer;

/* Prepares a scorer for model m (lora may be NULL); max_seqs >= 1; prefix_reuse is a
 * LOGLIK_REUSE_* mode (a true value from a flag means AUTO). */
int loglik_scorer_init(LoglikScorer *s, const Model *m, const LoraAdapters *lora, int max_seqs,
                       int prefix_reuse, CkError *err);

/* Releases the scorer's memory and zeroes it. */
void loglik_scorer_free(LoglikScorer *s);

/* Scores reqs[0..n) into out[0..n). Each result depends only on its request (and the model):
 * with prefix reuse, the requests whose inputs start with the first such request's context
 * after the same left truncation (none, or the same number of tokens cut because their
 * continuations are as long) share one context pass (in the AUTO mode when that pays, see above);
 * the others, and all without reuse, are packed max_seqs per forward. Refuses a continuation longer
 * than the model's context. */
int loglik_score(LoglikScorer *s, const LoglikRequest *reqs, int n, LoglikResult *out,
                 CkError *err);

#endif
