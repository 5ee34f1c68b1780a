/* merge.c — see merge.h. */
#include "train/merge.h"

#include <string.h>

#include "formats/hf_model.h"
#include "formats/llama2c.h"
#include "formats/lm.h"
#include "formats/peft.h"

int merge_dtype_from_name(const char *name, SafetensorsDtype *dtype, CkError *err) {
    static const struct {
        const char *name;
        SafetensorsDtype dtype;
    } NAMES[] = {{"f32", ST_F32}, {"f16", ST_F16}, {"bf16", ST_BF16}};
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (!strcmp(name, NAMES[i].name)) {
            *dtype = NAMES[i].dtype;
            return 0;
        }
    return ck_fail(err, "--dtype expects f32, f16 or bf16, got '%s'", name);
}

void merge_options_init(MergeOptions *o) {
    memset(o, 0, sizeof *o);
    o->dtype = ST_F32;
}

/* Writes the merged model: a llama2.c file (interleaved rotary order) for a .bin path, else a
 * Hugging Face folder. */
static int save_merged(const MergeOptions *o, LanguageModel *lm, CkError *err) {
    const size_t n = strlen(o->out);
    if (n > 4 && !strcmp(o->out + n - 4, ".bin")) {
        model_set_rope_style(&lm->model, ROPE_INTERLEAVED);
        return llama2c_save(&lm->model, o->out, err);
    }
    HfConfig cfg = {.model = lm->model.config,
                    .bos_token_id = lm->tokenizer.bos_id,
                    .eos_token_id = lm->tokenizer.eos_id};
    return hf_model_save(&lm->model, &cfg, o->out, o->dtype,
                         o->command_line ? o->command_line : "cutkit merge", err);
}

int merge_run(const MergeOptions *o, CkError *err) {
    if (!o->adapter || !o->out) return ck_fail(err, "--adapter and --out are required");
    LanguageModel lm;
    if (lm_open(&lm, o->model, NULL, err) != 0) return -1;
    LoraAdapters ad;
    int rc = peft_load(&ad, &lm.model, o->adapter, err);
    if (rc == 0) {
        rc = lora_merge(&lm.model, &ad, err);
        lora_free(&ad);
    }
    if (rc == 0) rc = save_merged(o, &lm, err);
    lm_close(&lm);
    return rc;
}
