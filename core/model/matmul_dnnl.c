/* matmul_dnnl.c — products through oneDNN's matmul primitive (when built with it).
 *
 * Creating a primitive costs far more than running a small one, so primitives are kept in a
 * small table keyed by everything that shapes them (sizes, strides, accumulation, data type,
 * thread count); a call sets the data pointers of the cached memory objects and executes.
 * One mutex guards the table, the bf16 scratch and the stream: products from several threads
 * at once run one after another (each is parallel inside). */
#include "model/matmul_backend.h"

#ifdef CUTKIT_HAVE_DNNL

#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#define DNNL_CACHE_SLOTS 64

typedef struct {
    int m, n, k, ldc, bf16, accumulate, threads;
    int ta, tb, lda, ldb;
} DnnlKey;

typedef struct {
    int used;
    DnnlKey key;
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, dst;
} DnnlSlot;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_state; /* 0 not tried, 1 ready, -1 unavailable */
static dnnl_engine_t g_engine;
static dnnl_stream_t g_stream;
static DnnlSlot g_slots[DNNL_CACHE_SLOTS];
static int g_next_victim;
static long g_created;
static uint16_t *g_scratch; /* bf16 copies of fp32 operands: A then B */
static size_t g_scratch_cap;
static char g_version[32];

/* Called with g_lock held. */
static int dnnl_init_locked(void) {
    if (g_state != 0) return g_state;
    g_state = -1;
    if (dnnl_engine_create(&g_engine, dnnl_cpu, 0) != dnnl_success) return g_state;
    if (dnnl_stream_create(&g_stream, g_engine, dnnl_stream_default_flags) != dnnl_success) {
        dnnl_engine_destroy(g_engine);
        return g_state;
    }
    const dnnl_version_t *v = dnnl_version();
    snprintf(g_version, sizeof g_version, "%d.%d.%d", v->major, v->minor, v->patch);
    g_state = 1;
    return g_state;
}

int mm_dnnl_present(void) {
    pthread_mutex_lock(&g_lock);
    int ok = dnnl_init_locked() == 1;
    pthread_mutex_unlock(&g_lock);
    return ok;
}

const char *mm_dnnl_version(void) {
    return mm_dnnl_present() ? g_version : NULL;
}

long mm_dnnl_primitives_created(void) {
    pthread_mutex_lock(&g_lock);
    long n = g_created;
    pthread_mutex_unlock(&g_lock);
    return n;
}

static void slot_release(DnnlSlot *s) {
    if (!s->used) return;
    dnnl_primitive_destroy(s->prim);
    dnnl_memory_destroy(s->src);
    dnnl_memory_destroy(s->wei);
    dnnl_memory_destroy(s->dst);
    memset(s, 0, sizeof *s);
}

/* Builds the primitive and memory objects of key into s; -1 when oneDNN refuses. */
static int slot_create(DnnlSlot *s, const DnnlKey *key) {
    dnnl_data_type_t in_dt = key->bf16 ? dnnl_bf16 : dnnl_f32;
    /* op(A) (m, k): A^T is A read with swapped strides; likewise B */
    dnnl_dims_t sd = {key->m, key->k}, ss = {key->ta ? 1 : key->lda, key->ta ? key->lda : 1};
    dnnl_dims_t wd = {key->k, key->n}, ws = {key->tb ? 1 : key->ldb, key->tb ? key->ldb : 1};
    dnnl_dims_t dd = {key->m, key->n}, ds = {key->ldc, 1};
    dnnl_memory_desc_t src_md, wei_md, dst_md;
    dnnl_matmul_desc_t desc;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    int rc = -1;
    if (dnnl_memory_desc_init_by_strides(&src_md, 2, sd, in_dt, ss) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&wei_md, 2, wd, in_dt, ws) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&dst_md, 2, dd, dnnl_f32, ds) != dnnl_success ||
        dnnl_matmul_desc_init(&desc, &src_md, &wei_md, NULL, &dst_md) != dnnl_success ||
        dnnl_primitive_attr_create(&attr) != dnnl_success)
        goto done;
    if (key->accumulate) { /* C += A·B: a sum post-op reads the destination first */
        if (dnnl_post_ops_create(&ops) != dnnl_success ||
            dnnl_post_ops_append_sum(ops, 1.0f) != dnnl_success ||
            dnnl_primitive_attr_set_post_ops(attr, ops) != dnnl_success)
            goto done;
    }
    if (dnnl_primitive_desc_create(&pd, &desc, attr, g_engine, NULL) != dnnl_success) goto done;
    memset(s, 0, sizeof *s);
    if (dnnl_primitive_create(&s->prim, pd) != dnnl_success) goto done;
    if (dnnl_memory_create(&s->src, &src_md, g_engine, DNNL_MEMORY_NONE) != dnnl_success ||
        dnnl_memory_create(&s->wei, &wei_md, g_engine, DNNL_MEMORY_NONE) != dnnl_success ||
        dnnl_memory_create(&s->dst, &dst_md, g_engine, DNNL_MEMORY_NONE) != dnnl_success) {
        s->used = 1;
        slot_release(s); /* destroy accepts what was created; NULL handles are ignored */
        goto done;
    }
    s->used = 1;
    s->key = *key;
    g_created++;
    rc = 0;
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (ops) dnnl_post_ops_destroy(ops);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return rc;
}

/* The cached slot for key, created on a miss (replacing slots round-robin); NULL on refusal. */
static DnnlSlot *slot_find(const DnnlKey *key) {
    for (int i = 0; i < DNNL_CACHE_SLOTS; i++)
        if (g_slots[i].used && !memcmp(&g_slots[i].key, key, sizeof *key)) return &g_slots[i];
    DnnlSlot *s = &g_slots[g_next_victim];
    g_next_victim = (g_next_victim + 1) % DNNL_CACHE_SLOTS;
    slot_release(s);
    return slot_create(s, key) == 0 ? s : NULL;
}

/* bf16 copies of g's fp32 operands in the scratch; *a and *b point at what oneDNN reads. */
static int operands_bf16(const MmGemm *g, const void **a, const void **b) {
    size_t na = g->a_bf16 ? 0 : mm_extent_a(g), nb = g->b_bf16 ? 0 : mm_extent_b(g);
    size_t need = na + nb;
    if (need > g_scratch_cap) {
        uint16_t *p = realloc(g_scratch, need * sizeof(uint16_t));
        if (!p) return -1;
        g_scratch = p;
        g_scratch_cap = need;
    }
    uint16_t *next = g_scratch;
    *a = g->a;
    *b = g->b;
    if (!g->a_bf16) {
        mm_to_bf16(next, g->a, na);
        *a = next;
        next += na;
    }
    if (!g->b_bf16) {
        mm_to_bf16(next, g->b, nb);
        *b = next;
    }
    return 0;
}

int mm_dnnl_run(const MmGemm *g, int bf16) {
    if (!bf16 && (g->a_bf16 || g->b_bf16)) return -1;
    DnnlKey key;
    memset(&key, 0, sizeof key); /* padding too: keys are compared with memcmp */
    key.m = g->m;
    key.n = g->n;
    key.k = g->k;
    key.ldc = g->ldc;
    key.bf16 = bf16;
    key.accumulate = g->beta != 0.0f;
    key.threads = omp_get_max_threads();
    key.ta = g->ta;
    key.tb = g->tb;
    key.lda = g->lda;
    key.ldb = g->ldb;
    int rc = -1;
    pthread_mutex_lock(&g_lock);
    if (dnnl_init_locked() != 1) goto done;
    DnnlSlot *s = slot_find(&key);
    if (!s) goto done;
    const void *a = g->a, *b = g->b;
    if (bf16 && operands_bf16(g, &a, &b) != 0) goto done;
    dnnl_memory_set_data_handle(s->src, (void *)a);
    dnnl_memory_set_data_handle(s->wei, (void *)b);
    dnnl_memory_set_data_handle(s->dst, g->c);
    dnnl_exec_arg_t args[3] = {
        {DNNL_ARG_SRC, s->src}, {DNNL_ARG_WEIGHTS, s->wei}, {DNNL_ARG_DST, s->dst}};
    if (dnnl_primitive_execute(s->prim, g_stream, 3, args) != dnnl_success) goto done;
    if (dnnl_stream_wait(g_stream) != dnnl_success) goto done;
    rc = 0;
done:
    pthread_mutex_unlock(&g_lock);
    return rc;
}

#else /* built without oneDNN: the backend reports itself absent */

int mm_dnnl_present(void) {
    return 0;
}

const char *mm_dnnl_version(void) {
    return NULL;
}

long mm_dnnl_primitives_created(void) {
    return 0;
}

int mm_dnnl_run(const MmGemm *g, int bf16) {
    (void)g;
    (void)bf16;
    return -1;
}

#endif
