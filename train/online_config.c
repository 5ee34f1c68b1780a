/* online_config.c — see online_config.h. */
#include "train/online_config.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>

#include "train/merge.h"
#include "util/fileio.h"

/* The settings of o as a JSON object (NULL when out of memory). */
static cJSON *settings_json(const OnlineRunOptions *o) {
    cJSON *c = cJSON_CreateObject();
    const char *base = strrchr(o->out, '/');
    base = base && base[1] ? base + 1 : o->out;
    int ok = c && cJSON_AddStringToObject(c, "label", base) &&
             cJSON_AddStringToObject(c, "objective", "cut-online") &&
             (!o->preset || cJSON_AddStringToObject(c, "preset", o->preset)) &&
             cJSON_AddStringToObject(c, "model", o->model ? o->model : "embedded:stories260K") &&
             cJSON_AddStringToObject(c, "instructions", o->instructions) &&
             cJSON_AddStringToObject(c, "template", o->template_path ? o->template_path : "alpaca");
    const struct {
        const char *name;
        double value;
    } numbers[] = {
        {"iterations", o->iterations}, {"per_iteration", o->per_iteration},
        {"max_tokens", o->max_tokens}, {"temperature", o->temperature},
        {"top_p", o->top_p},           {"seed", (double)o->seed},
        {"steps", o->steps},           {"batch_size", o->batch_size},
        {"warmup", o->warmup},         {"lr", o->lr},
        {"lambda", o->lambda},         {"alpha", o->alpha},
        {"cutoff", o->cutoff},         {"align_p_seed", (double)o->align_p_seed},
    };
    for (size_t i = 0; ok && i < sizeof numbers / sizeof numbers[0]; i++)
        ok = cJSON_AddNumberToObject(c, numbers[i].name, numbers[i].value) != NULL;
    ok = ok && cJSON_AddBoolToObject(c, "keep_after_split", o->keep_after_split) &&
         cJSON_AddBoolToObject(c, "strip", o->strip) &&
         (o->align_p_ratio >= 0 ? cJSON_AddNumberToObject(c, "align_p_ratio", o->align_p_ratio)
                                : cJSON_AddStringToObject(c, "align_p_ratio", "off")) &&
         cJSON_AddBoolToObject(c, "lora", o->lora) &&
         cJSON_AddStringToObject(c, "merge_dtype", o->merge_dtype ? o->merge_dtype : "f32") &&
         (!o->train_preset || cJSON_AddStringToObject(c, "train_preset", o->train_preset)) &&
         cJSON_AddStringToObject(c, "cutkit_version", CUTKIT_VERSION);
    if (!ok) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

int online_config_write(const OnlineRunOptions *o, CkError *err) {
    SafetensorsDtype dtype;
    if (merge_dtype_from_name(o->merge_dtype ? o->merge_dtype : "f32", &dtype, err) != 0)
        return ck_wrap(err, "merge");
    if (!(o->align_p_ratio <= 1))
        return ck_fail(err, "--align-p-ratio expects off or a number from 0 to 1, got %g",
                       o->align_p_ratio);
    cJSON *c = settings_json(o);
    char *text = c ? cJSON_Print(c) : NULL;
    cJSON_Delete(c);
    char path[4200];
    int rc = !text ? ck_fail(err, "out of memory")
             : fileio_path(path, sizeof path, o->out, "config.json") != 0
                 ? ck_fail(err, "%s: path too long", o->out)
                 : fileio_write_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}
