/* cmd_eval_judge.c — `cutkit eval judge`: pairwise judgments of a model's outputs against a
 * reference's, into AlpacaEval's annotations.json; resumable, failures kept as missing. Under
 * mpirun the pairs to judge are sharded over the ranks (cli/shard.h; a judgment depends only
 * on its pair, the seed and the judge) and rank 0, which alone reads and writes --out,
 * gathers them in order, so the file equals the one-process run's byte for byte. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eval/annotations.h"
#include "cli/commands.h"
#include "train/dist.h"
#include "eval/judge.h"
#include "formats/lm.h"
#include "eval/outputs.h"
#include "formats/peft.h"
#include "eval/results.h"
#include "cli/shard.h"
#include "util/threads.h"

static struct {
    const char *outputs, *reference, *out, *judge, *judge_model, *judge_tokenizer;
    const char *judge_adapter, *judge_template, *judge_command, *annotator;
    double timeout;
    uint64_t seed;
    int no_randomize, both_orders, retry_missing, limit, save_every, threads;
} opt;

static FlagSpec FLAGS[] = {
    {"outputs", FLAG_STRING, &opt.outputs, NULL, 0, -1,
     "model_outputs.json of the evaluated model (output_2, generator_2)"},
    {"reference", FLAG_STRING, &opt.reference, NULL, 0, -1,
     "model_outputs.json of the baseline (output_1, generator_1), paired by instruction"},
    {"out", FLAG_STRING, &opt.out, NULL, 0, -1,
     "annotations.json to write; if it exists, judged records are kept (resume)"},
    {"judge", FLAG_STRING, &opt.judge, "model", 0, -1,
     "model (log-probabilities of two verdicts), command (--judge-command) or synth (the "
     "synthetic world's rules)"},
    {"judge-model", FLAG_STRING, &opt.judge_model, NULL, 0, -1,
     "judge model: llama2.c .bin or Hugging Face folder; default: embedded stories260K"},
    {"judge-tokenizer", FLAG_STRING, &opt.judge_tokenizer, NULL, 0, -1,
     "the judge model's tokenizer (default: the model's)"},
    {"judge-adapter", FLAG_STRING, &opt.judge_adapter, NULL, 0, -1,
     "PEFT LoRA adapter folder for the judge model"},
    {"judge-template", FLAG_STRING, &opt.judge_template, NULL, 0, -1,
     "pairwise template JSON ({\"prompt\", \"verdict_1\", \"verdict_2\"}); default: the "
     "built-in, shipped as eval/templates/pairwise_ab.json"},
    {"judge-command", FLAG_STRING, &opt.judge_command, NULL, 0, -1,
     "shell command (/bin/sh -c) reading {\"instruction\", \"output_1\", \"output_2\"} on stdin "
     "and printing a preference in [1, 2] or {\"preference\": p}"},
    {"timeout", FLAG_DOUBLE, &opt.timeout, "120", 0, 1e9,
     "seconds per judge command call (0: none)"},
    {"annotator", FLAG_STRING, &opt.annotator, NULL, 0, -1,
     "annotator name written (default: by judge kind)"},
    {"seed", FLAG_U64, &opt.seed, "0", 0, -1, "seed of the per-instruction order switch"},
    {"no-randomize", FLAG_BOOL, &opt.no_randomize, NULL, 0, -1,
     "always show the baseline first (no order switching)"},
    {"both-orders", FLAG_BOOL, &opt.both_orders, NULL, 0, -1,
     "judge both orders and average the two preferences"},
    {"retry-missing", FLAG_BOOL, &opt.retry_missing, NULL, 0, -1,
     "judge again the records of --out whose preference is missing (null)"},
    {"limit", FLAG_INT, &opt.limit, "0", 0, 1e9, "judge only the first N outputs (0: all)"},
    {"save-every", FLAG_INT, &opt.save_every, "20", 1, 1e9,
     "rewrite --out (atomically) every N judgments"},
    {"threads", FLAG_INT, &opt.threads, "0", 0, 1024, "threads (0: one per core)"},
};

static const CommandSpec SPEC = {
    "eval judge",
    "pairwise judging into AlpacaEval annotations.json",
    "--outputs MODEL.json --reference BASELINE.json --out annotations.json "
    "[--judge model|command|synth]",
    "output_1 is the reference (baseline), output_2 the model; preference 1: baseline better,\n"
    "2: model better, 1.5: draw, continuous for the model judge. Identical outputs are a draw\n"
    "without asking the judge. The order shown is switched for a seeded pseudo-random half of\n"
    "the instructions (is_switched) and flipped back (3 - p); raw_completion is the judge's\n"
    "verdict before flipping. A failed judgment is written with preference null and its error;\n"
    "the command then exits 1, and --retry-missing judges those records again.\n"
    "Sharded under MPI: `mpirun -np K cutkit eval judge ...` splits the pairs over K\n"
    "processes; rank 0 gathers the judgments and writes the same file.",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0],
};

const CommandSpec *cmd_eval_judge_spec(void) {
    return &SPEC;
}

static char *dup_or_null(const char *s) {
    return s ? strdup(s) : NULL;
}

static int same(const char *a, const char *b) {
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The reference record with this instruction: the same index first, else a search. */
static const ModelOutput *find_reference(const ModelOutputs *ref, int i, const char *instruction) {
    if (i < ref->n && strcmp(ref->items[i].instruction, instruction) == 0) return &ref->items[i];
    for (int k = 0; k < ref->n; k++)
        if (strcmp(ref->items[k].instruction, instruction) == 0) return &ref->items[k];
    return NULL;
}

/* What judge_annotate fills in, packed for the gather to rank 0 (the preference bit for bit). */
static int pack_judgment(ShardBuf *b, const Annotation *a, CkError *err) {
    if (shard_put(b, &a->preference, sizeof a->preference, err) ||
        shard_put_int(b, a->is_switched, err) || shard_put_str(b, a->annotator, err) ||
        shard_put_str(b, a->raw_completion, err) || shard_put_str(b, a->error, err))
        return -1;
    return 0;
}

/* Reads a judgment packed by pack_judgment into a, replacing what it held there. */
static int unpack_judgment(ShardReader *r, Annotation *a, CkError *err) {
    free(a->annotator), free(a->raw_completion), free(a->error);
    a->annotator = a->raw_completion = a->error = NULL;
    if (shard_get(r, &a->preference, sizeof a->preference, err) ||
        shard_get_int(r, &a->is_switched, err) || shard_get_str(r, &a->annotator, err) ||
        shard_get_str(r, &a->raw_completion, err) || shard_get_str(r, &a->error, err))
        return -1;
    return 0;
}

/* Every rank must judge the same pairs: a hash of them agrees across ranks, else the
 * gathered file would mix two runs. */
static int check_same_pairs(const AnnotationSet *anns, CkError *err) {
    if (dist_size() == 1) return 0;
    uint64_t h = results_hash(RESULTS_HASH_INIT, &anns->n, sizeof anns->n);
    for (int i = 0; i < anns->n; i++) {
        const Annotation *a = &anns->items[i];
        h = results_hash_str(h, a->instruction);
        h = results_hash_str(h, a->output_1 ? a->output_1 : "");
        h = results_hash_str(h, a->output_2 ? a->output_2 : "");
        int judge_now = a->is_switched == -2;
        h = results_hash(h, &judge_now, sizeof judge_now);
    }
    int same = 0;
    if (dist_same_u64(h, &same, err) != 0) return -1;
    if (!same)
        return ck_fail(err,
                       "the ranks have different pairs to judge (%d here): give every rank the "
                       "same flags and files",
                       anns->n);
    return 0;
}

static int run_eval_judge(int argc, char **argv) {
    char *positional[1];
    int n_positional;
    int rc = flags_parse(&SPEC, argc, argv, positional, 0, &n_positional);
    if (rc != 0) return rc;
    if (!opt.outputs || !opt.reference || !opt.out) {
        fprintf(stderr, "cutkit eval judge: --outputs, --reference and --out are required\n");
        return 2;
    }
    const int kind = !strcmp(opt.judge, "model")     ? 0
                     : !strcmp(opt.judge, "command") ? 1
                     : !strcmp(opt.judge, "synth")   ? 2
                                                     : -1;
    if (kind < 0) {
        fprintf(stderr, "cutkit eval judge: --judge must be model, command or synth, not '%s'\n",
                opt.judge);
        return 2;
    }
    if (kind == 1 && !opt.judge_command) {
        fprintf(stderr, "cutkit eval judge: --judge command needs --judge-command\n");
        return 2;
    }
    threads_set(opt.threads);
    CkError err = {{0}};
    ModelOutputs model = {0}, ref = {0};
    AnnotationSet old = {0}, anns = {0};
    PairwiseTemplate tpl = {0};
    LanguageModel lm;
    LoraAdapters ad;
    int lm_ok = 0, ad_ok = 0;
    Judge judge = {0};
    ShardBuf mine = {0};
    char *gathered = NULL;
    int *todo = NULL;
    const int root = dist_rank() == 0;
    rc = 1;
    if (outputs_load(&model, opt.outputs, 1, &err) != 0 ||
        outputs_load(&ref, opt.reference, 1, &err) != 0)
        goto fail;
    struct stat st;
    /* --out is rank 0's alone: it reads it, and sends the other ranks what they need of it */
    if (root && stat(opt.out, &st) == 0 && annotations_load(&old, opt.out, &err) != 0) goto fail;
    int n_old = old.n; /* rank 0's count, on every rank */
    if (dist_bcast_bytes(&n_old, sizeof n_old, 0, &err) != 0) goto fail;
    int n = model.n;
    if (opt.limit > 0 && opt.limit < n) n = opt.limit;
    if (n_old > n) n = n_old < model.n ? n_old : model.n; /* never drop judged records */
    /* the pairs, with what --out already holds */
    int to_judge = 0;
    for (int i = 0; i < n; i++) {
        const ModelOutput *m = &model.items[i];
        const ModelOutput *r = find_reference(&ref, i, m->instruction);
        if (!r) {
            ck_fail(&err, "%s: record %d: no record of %s has its instruction", opt.outputs, i,
                    opt.reference);
            goto fail;
        }
        Annotation *a = annotations_add(&anns);
        if (!a) {
            ck_fail(&err, "out of memory");
            goto fail;
        }
        if (i < n_old && !root) {
            /* resumed on rank 0; here only whether it is judged again matters (below) */
            a->instruction = dup_or_null(m->instruction);
            a->output_1 = dup_or_null(r->output);
            a->output_2 = dup_or_null(m->output);
            if (!a->instruction || !a->output_1 || !a->output_2) {
                ck_fail(&err, "out of memory");
                goto fail;
            }
            a->is_switched = -1;
            continue;
        } else if (i < n_old) { /* resume: the record must be this very pair */
            Annotation *o = &old.items[i];
            if (strcmp(o->instruction, m->instruction) != 0 || !same(o->output_1, r->output) ||
                !same(o->output_2, m->output)) {
                ck_fail(&err,
                        "%s: record %d does not hold the pair being judged (another baseline "
                        "or outputs?); choose another --out",
                        opt.out, i);
                goto fail;
            }
            *a = *o; /* take it over */
            memset(o, 0, sizeof *o);
            o->preference = NAN;
            if (!isnan(a->preference) || !opt.retry_missing) continue;
        } else {
            a->instruction = dup_or_null(m->instruction);
            a->output_1 = dup_or_null(r->output);
            a->output_2 = dup_or_null(m->output);
            a->generator_1 = dup_or_null(r->generator ? r->generator : "reference");
            a->generator_2 = dup_or_null(m->generator ? m->generator : "model");
            a->dataset = dup_or_null(m->dataset ? m->dataset : r->dataset);
            if (!a->instruction || !a->output_1 || !a->output_2 || !a->generator_1 ||
                !a->generator_2) {
                ck_fail(&err, "out of memory");
                goto fail;
            }
        }
        a->is_switched = -2; /* marks "to judge" until judged */
        to_judge++;
    }
    /* which resumed records are judged again (--retry-missing) is rank 0's to say */
    todo = calloc((size_t)(anns.n > 0 ? anns.n : 1), sizeof(int));
    if (!todo) {
        ck_fail(&err, "out of memory");
        goto fail;
    }
    for (int i = 0; i < anns.n; i++) todo[i] = anns.items[i].is_switched == -2;
    if (dist_bcast_bytes(todo, sizeof(int) * (size_t)anns.n, 0, &err) != 0) goto fail;
    to_judge = 0;
    for (int i = 0; i < anns.n; i++) {
        if (todo[i]) anns.items[i].is_switched = -2;
        if (todo[i]) todo[to_judge++] = i; /* now the indices of the pairs to judge */
    }
    if (check_same_pairs(&anns, &err) != 0) goto fail;
    if (to_judge > 0) {
        if (kind == 0) {
            if (pairwise_template_load(&tpl, opt.judge_template, &err) != 0 ||
                lm_open(&lm, opt.judge_model, opt.judge_tokenizer, &err) != 0)
                goto fail;
            lm_ok = 1;
            if (opt.judge_adapter) {
                if (peft_load(&ad, &lm.model, opt.judge_adapter, &err) != 0) goto fail;
                ad_ok = 1;
            }
            if (judge_model_create(&judge, &lm.model, &lm.tokenizer, ad_ok ? &ad : NULL, &tpl,
                                   opt.annotator, &err) != 0)
                goto fail;
        } else if (kind == 1) {
            if (judge_command_create(&judge, opt.judge_command, opt.timeout, opt.annotator, &err) !=
                0)
                goto fail;
        } else if (judge_synth_create(&judge, &err) != 0) {
            goto fail;
        }
        if (kind == 2 && opt.annotator)
            snprintf(judge.name, sizeof judge.name, "%s", opt.annotator);
    }
    JudgeOptions jo = {opt.seed, !opt.no_randomize, opt.both_orders};
    int judged = 0, failed = 0, since_save = 0;
    const char *first_error = NULL;
    /* rounds of about --save-every pairs: each rank judges its contiguous share, rank 0
     * gathers the round's judgments into its records in order */
    const int64_t round = shard_round_size((opt.save_every + dist_size() - 1) / dist_size());
    for (int64_t lo0 = 0; lo0 < to_judge; lo0 += round) {
        int64_t hi0 = lo0 + round < to_judge ? lo0 + round : to_judge, lo, hi;
        shard_round_share(lo0, hi0, &lo, &hi);
        shard_buf_reset(&mine);
        for (int64_t k = lo; k < hi; k++) {
            Annotation *a = &anns.items[todo[k]];
            if (judge_annotate(&judge, &jo, a, &err) != 0) goto fail;
            if (dist_size() > 1 && pack_judgment(&mine, a, &err) != 0) goto fail;
        }
        if (dist_size() > 1) {
            size_t n_gathered = 0;
            free(gathered);
            gathered = NULL;
            if (shard_gather(&mine, &gathered, &n_gathered, &err) != 0) goto fail;
            if (!root) continue;
            /* rank 0's own judgments come first and are in place already */
            ShardReader rd = {gathered, n_gathered, mine.n};
            for (int64_t k = hi; k < hi0; k++)
                if (unpack_judgment(&rd, &anns.items[todo[k]], &err) != 0) goto fail;
        }
        for (int64_t k = lo0; k < hi0; k++) {
            const int i = todo[k];
            Annotation *a = &anns.items[i];
            judged++;
            if (isnan(a->preference)) {
                failed++;
                if (!first_error) first_error = a->error;
                fprintf(stderr, "record %d: %s\n", i, a->error ? a->error : "failed");
            }
            if (++since_save >= opt.save_every) {
                if (annotations_save(&anns, opt.out, &err) != 0) goto fail;
                since_save = 0;
                fprintf(stderr, "%d/%d judged\n", judged, to_judge);
            }
        }
    }
    if (!root) { /* rank 0 holds the judgments and writes --out */
        rc = 0;
        goto cleanup;
    }
    for (int i = 0; i < anns.n; i++) /* keep records not judged this time as they were */
        if (anns.items[i].is_switched == -2) anns.items[i].is_switched = -1;
    if (annotations_save(&anns, opt.out, &err) != 0) goto fail;
    int missing = 0;
    for (int i = 0; i < anns.n; i++) missing += isnan(anns.items[i].preference);
    fprintf(stderr, "%s: %d pairs, %d judged now, %d missing\n", opt.out, anns.n, judged, missing);
    if (missing > 0) {
        fprintf(stderr,
                "cutkit eval judge: %d judgments are missing (preference null)%s%s; rerun with "
                "--retry-missing to judge them again\n",
                missing, first_error ? "; first error: " : "", first_error ? first_error : "");
        rc = 1;
    } else {
        rc = 0;
    }
    goto cleanup;
fail:
    shard_fail("eval judge", err.msg);
cleanup:
    shard_buf_free(&mine);
    free(gathered);
    free(todo);
    judge_close(&judge);
    if (ad_ok) lora_free(&ad);
    if (lm_ok) lm_close(&lm);
    pairwise_template_free(&tpl);
    outputs_free(&model);
    outputs_free(&ref);
    annotations_free(&old);
    annotations_free(&anns);
    return rc;
}

int cmd_eval_judge(int argc, char **argv) {
    CkError err = {{0}};
    if (dist_init(&argc, &argv, &err) != 0) {
        fprintf(stderr, "cutkit eval judge: %s\n", err.msg);
        return 1;
    }
    int rc = run_eval_judge(argc, argv);
    /* every rank gets here unless one aborted (which ends them all) */
    dist_finalize();
    return rc;
}
