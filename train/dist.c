/* dist.c — see dist.h. The only file of cutkit that calls MPI. Without CUTKIT_MPI, or when
 * the process was not started by an MPI launcher, it is rank 0 of 1 and no MPI call is made:
 * Open MPI's singleton start (MPI_Init without mpirun) spawns a helper daemon and costs a
 * third of a second, which a plain `cutkit train` should not pay. */
#include "train/dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef CUTKIT_MPI
#include <limits.h>
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1;
#ifdef CUTKIT_MPI
static int g_started = 0; /* this module called MPI_Init (and so must call MPI_Finalize) */
#endif

int dist_available(void) {
#ifdef CUTKIT_MPI
    return 1;
#else
    return 0;
#endif
}

int dist_rank(void) {
    return g_rank;
}

int dist_size(void) {
    return g_size;
}

void dist_shard_range(int64_t n, int64_t *lo, int64_t *hi) {
    if (n < 0) n = 0;
    /* k n / K in 128 bits: n may be large enough for k n to overflow 64 */
    *lo = (int64_t)((__int128)n * g_rank / g_size);
    *hi = (int64_t)((__int128)n * (g_rank + 1) / g_size);
}

/* One rank: the "gathered" result is a copy of its own buffer. */
static int local_gather(const void *buf, size_t n, char **out, size_t *out_n, size_t *counts,
                        CkError *err) {
    *out = malloc(n > 0 ? n : 1);
    *out_n = 0;
    if (!*out) return ck_fail(err, "out of memory gathering %zu bytes", n);
    if (n) memcpy(*out, buf, n);
    *out_n = n;
    if (counts) counts[0] = n;
    return 0;
}

void dist_abort(const char *msg) {
    if (g_size > 1)
        fprintf(stderr, "cutkit: rank %d: %s\n", g_rank, msg);
    else
        fprintf(stderr, "cutkit: %s\n", msg);
    fflush(stderr);
#ifdef CUTKIT_MPI
    if (g_started) MPI_Abort(MPI_COMM_WORLD, 1);
#endif
    exit(1);
}

#ifdef CUTKIT_MPI

/* Whether an MPI launcher started this process: Open MPI's mpirun (OMPI_*, PMIX_*), MPICH
 * and Intel MPI's hydra and Slurm's srun (PMI_*). */
static int launched_by_mpi(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE",
                                       "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

int dist_init(int *argc, char ***argv, CkError *err) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized || g_started) return 0;
    if (!launched_by_mpi()) return 0;
    int provided = 0;
    /* FUNNELED: OpenMP threads compute, only the main thread communicates */
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return ck_fail(err, "MPI_Init_thread failed");
    g_started = 1;
    /* errors come back as codes instead of ending the job without a word */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    if (provided < MPI_THREAD_FUNNELED)
        return ck_fail(err, "the MPI library provides thread level %d, cutkit needs FUNNELED (%d)",
                       provided, (int)MPI_THREAD_FUNNELED);
    return 0;
}

void dist_finalize(void) {
    if (!g_started) return;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
    g_started = 0;
    g_rank = 0;
    g_size = 1;
}

/* Fails with MPI's own description of code rc, naming the operation. */
static int mpi_fail(CkError *err, const char *what, int rc) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "code %d", rc);
    return ck_fail(err, "%s failed on rank %d: %s", what, g_rank, text);
}

/* MPI counts are int: sums over more than 2^30 elements go in pieces of 2^30 */
#define DIST_CHUNK ((size_t)1 << 30)

static int allreduce_sum(void *buf, size_t n, MPI_Datatype type, size_t elem, CkError *err) {
    if (g_size == 1) return 0;
    char *p = buf;
    for (size_t done = 0; done < n; done += DIST_CHUNK) {
        size_t len = n - done < DIST_CHUNK ? n - done : DIST_CHUNK;
        int rc =
            MPI_Allreduce(MPI_IN_PLACE, p + done * elem, (int)len, type, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(err, "MPI_Allreduce", rc);
    }
    return 0;
}

int dist_allreduce_sum_f32(float *buf, size_t n, CkError *err) {
    return allreduce_sum(buf, n, MPI_FLOAT, sizeof(float), err);
}

int dist_allreduce_sum_f64(double *buf, size_t n, CkError *err) {
    return allreduce_sum(buf, n, MPI_DOUBLE, sizeof(double), err);
}

int dist_allreduce_sum_i64(int64_t *buf, size_t n, CkError *err) {
    return allreduce_sum(buf, n, MPI_INT64_T, sizeof(int64_t), err);
}

int dist_same_u64(uint64_t v, int *same, CkError *err) {
    *same = 1;
    if (g_size == 1) return 0;
    /* the smallest and the largest value at once: (v, ~v) under MIN */
    uint64_t mm[2] = {v, ~v};
    int rc = MPI_Allreduce(MPI_IN_PLACE, mm, 2, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail(err, "MPI_Allreduce", rc);
    *same = mm[0] == ~mm[1];
    return 0;
}

int dist_bcast_bytes(void *buf, size_t n, int root, CkError *err) {
    if (g_size == 1) return 0;
    char *p = buf;
    for (size_t done = 0; done < n; done += DIST_CHUNK) {
        size_t len = n - done < DIST_CHUNK ? n - done : DIST_CHUNK;
        int rc = MPI_Bcast(p + done, (int)len, MPI_BYTE, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(err, "MPI_Bcast", rc);
    }
    return 0;
}

int dist_barrier(CkError *err) {
    if (g_size == 1) return 0;
    int rc = MPI_Barrier(MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(err, "MPI_Barrier", rc);
}

/* The gathers of dist.h: lengths first (64-bit), then the bytes with Gatherv/Allgatherv,
 * whose displacements are int, so the total is limited to INT_MAX bytes. */
static int gather_bytes(const void *buf, size_t n, char **out, size_t *out_n, size_t *counts,
                        int all, CkError *err) {
    if (g_size == 1) return local_gather(buf, n, out, out_n, counts, err);
    *out = NULL;
    *out_n = 0;
    const int K = g_size;
    long long mine = (long long)n;
    long long *lens = malloc(sizeof(long long) * (size_t)K);
    int *cnt = malloc(sizeof(int) * (size_t)K), *displ = malloc(sizeof(int) * (size_t)K);
    int rc = 0, fail = 0;
    if (!lens || !cnt || !displ) {
        /* every rank must still take part, or the others wait forever: end the job */
        dist_abort("out of memory in a gather");
    }
    rc = all ? MPI_Allgather(&mine, 1, MPI_LONG_LONG, lens, 1, MPI_LONG_LONG, MPI_COMM_WORLD)
             : MPI_Gather(&mine, 1, MPI_LONG_LONG, lens, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) {
        fail = mpi_fail(err, all ? "MPI_Allgather" : "MPI_Gather", rc);
        goto done;
    }
    const int receives = all || g_rank == 0;
    long long total = 0;
    if (receives) {
        for (int k = 0; k < K; k++) {
            displ[k] = (int)total;
            cnt[k] = (int)lens[k];
            total += lens[k];
        }
    }
    /* every rank learns whether the total fits before anyone calls Gatherv */
    long long total_all = total;
    if (!all && (rc = MPI_Bcast(&total_all, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD)) != MPI_SUCCESS) {
        fail = mpi_fail(err, "MPI_Bcast", rc);
        goto done;
    }
    if (total_all > INT_MAX) {
        fail = ck_fail(err, "a gather of %lld bytes exceeds MPI's int counts (%d)", total_all,
                       INT_MAX);
        goto done;
    }
    if (receives) {
        *out = malloc(total > 0 ? (size_t)total : 1);
        if (!*out) dist_abort("out of memory in a gather");
    }
    rc = all ? MPI_Allgatherv(buf, (int)n, MPI_BYTE, *out, cnt, displ, MPI_BYTE, MPI_COMM_WORLD)
             : MPI_Gatherv(buf, (int)n, MPI_BYTE, *out, cnt, displ, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) {
        fail = mpi_fail(err, all ? "MPI_Allgatherv" : "MPI_Gatherv", rc);
        free(*out);
        *out = NULL;
        goto done;
    }
    if (receives) {
        *out_n = (size_t)total;
        for (int k = 0; k < K; k++) counts[k] = (size_t)lens[k];
    }
done:
    free(lens);
    free(cnt);
    free(displ);
    return fail;
}

#else /* without MPI: one process */

int dist_init(int *argc, char ***argv, CkError *err) {
    (void)argc, (void)argv, (void)err;
    return 0;
}

void dist_finalize(void) {}

int dist_allreduce_sum_f32(float *buf, size_t n, CkError *err) {
    (void)buf, (void)n, (void)err;
    return 0;
}

int dist_allreduce_sum_f64(double *buf, size_t n, CkError *err) {
    (void)buf, (void)n, (void)err;
    return 0;
}

int dist_allreduce_sum_i64(int64_t *buf, size_t n, CkError *err) {
    (void)buf, (void)n, (void)err;
    return 0;
}

int dist_same_u64(uint64_t v, int *same, CkError *err) {
    (void)v, (void)err;
    *same = 1;
    return 0;
}

int dist_bcast_bytes(void *buf, size_t n, int root, CkError *err) {
    (void)buf, (void)n, (void)root, (void)err;
    return 0;
}

int dist_barrier(CkError *err) {
    (void)err;
    return 0;
}

static int gather_bytes(const void *buf, size_t n, char **out, size_t *out_n, size_t *counts,
                        int all, CkError *err) {
    (void)all;
    return local_gather(buf, n, out, out_n, counts, err);
}

#endif

int dist_gather_bytes(const void *buf, size_t n, char **out, size_t *out_n, size_t *counts,
                      CkError *err) {
    return gather_bytes(buf, n, out, out_n, counts, 0, err);
}

int dist_allgather_bytes(const void *buf, size_t n, char **out, size_t *out_n, size_t *counts,
                         CkError *err) {
    return gather_bytes(buf, n, out, out_n, counts, 1, err);
}
