/* attention.h — one (sequence, head) pair of causal attention as the forward (model.c) and
 * its backward (backward.c) both see it: where its rows sit in the packed buffers. Private to
 * core/model/. */
#ifndef CK_ATTENTION_H
#define CK_ATTENTION_H

#include "model/model.h"

typedef struct {
    const float *q; /* (T, hs) queries; the output rows (T, hs) share their stride ldq */
    const float *k; /* (past + T, hs) keys, row stride ldkv (the branch form: own keys) */
    const float *v; /* values, as k */
    float *prob;    /* (T, past + T) softmax of the scores, row stride ldp */
    int ldq, ldkv, ldp;
    int T;       /* queries */
    int past;    /* keys before the first query: the cache, or the shared prefix (0 in training) */
    int hs;      /* head size */
    float scale; /* scores are scale q·k (1/sqrt(hs) unless the config says otherwise) */
    float softcap; /* 0: none; else scores s -> softcap tanh(s / softcap) before the softmax */
    int window;    /* 0: causal; else a query sees only the last `window` positions */
} AttentionHead;

/* The score scale, soft cap and sliding window of layer l's heads (model.c). */
void model_attention_params(const Model *m, int l, float *scale, float *softcap, int *window);

#endif
