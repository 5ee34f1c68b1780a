/* attention.h — one (sequence, head) pair of causal attention as the forward (model.c) and
 * its backward (backward.c) both see it: where its rows sit in the packed buffers. Private to
 * core/model/. */
#ifndef CK_ATTENTION_H
#define CK_ATTENTION_H

typedef struct {
    const float *q; /* (T, hs) queries; the output rows (T, hs) share their stride ldq */
    const float *k; /* (past + T, hs) keys, row stride ldkv (the branch form: own keys) */
    const float *v; /* values, as k */
    float *prob;    /* (T, past + T) softmax of the scores, row stride ldp */
    int ldq, ldkv, ldp;
    int T;    /* queries */
    int past; /* keys before the first query: the cache, or the shared prefix (0 in training) */
    int hs;   /* head size */
} AttentionHead;

#endif
