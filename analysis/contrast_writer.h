/* contrast_writer.h — contrast.csv, one row per response token of every example, streamed to
 * a temporary file beside the target and renamed over it at the end, so a reader (the report,
 * reports/contrast_csv.h) never sees a partial file.
 *
 * The format: one comment line starting with "# " (provenance: model, template, judgments,
 * limit), then the header
 *   example,position,token_id,token_text,log_pa,log_pm,log_ratio,flagged@λ1,flagged@λ2,...
 * and the rows. example is the record's index in the judgment file, position the token's
 * index in the response (0-based; the last one is EOS), token_text the token's bytes in the
 * response (empty for EOS), quoted by libcsv (every text field is quoted, quotes doubled, so
 * commas, quotes and newlines survive), log_ratio = log_pa - log_pm, and flagged@λ is 1 when
 * cut_detect flags the token at λ (log pA - log pM > log λ, strict), else 0. Numbers are
 * written with 10 significant digits; λ in the header as %.10g ("flagged@1.1"). */
#ifndef CK_CONTRAST_WRITER_H
#define CK_CONTRAST_WRITER_H

#include "util/ck_error.h"
#include "util/fileio.h"
#include "analysis/contrast.h"

typedef struct {
    AtomicFile file; /* contrast.csv being written (util/fileio.h) */
    double *lambdas;
    int n_lambdas;
    unsigned char *flags; /* scratch: one example's flags at one λ */
    int cap_flags;
    long rows;
} ContrastWriter;

/* Opens path's temporary file (an AtomicFile beside it) and writes the comment line (comment: one
 * line; newlines in it become spaces) and the header for the n λ values. */
int contrast_writer_open(ContrastWriter *w, const char *path, const char *comment,
                         const double *lambdas, int n, CkError *err);

/* Writes the rows of one negative example c (token_contrast_compute) of the record with index
 * example whose response is response. */
int contrast_writer_example(ContrastWriter *w, long example, const TokenContrast *c,
                            const char *response, CkError *err);

/* Commits the file (atomic_file_commit: flushed, synced, renamed over the target, directory
 * synced); the writer is released either way. */
int contrast_writer_commit(ContrastWriter *w, CkError *err);

/* Closes and removes the temporary file and releases the writer; safe after a commit and on a
 * zeroed writer. */
void contrast_writer_abort(ContrastWriter *w);

#endif
