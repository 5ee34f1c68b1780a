/* hf_model.h — Hugging Face Llama folders: config.json + model.safetensors (or shards with
 * model.safetensors.index.json), read into and written from a Model. */
#ifndef CK_HF_MODEL_H
#define CK_HF_MODEL_H

#include <stddef.h>

#include "util/ck_error.h"
#include "formats/hf_config.h"
#include "model/model.h"
#include "formats/safetensors.h"

/* Writes the Hugging Face tensor name of parameter id of layer `layer` into buf
 * (e.g. "model.layers.3.mlp.gate_proj.weight"). */
void hf_param_name(ParamId id, int layer, char *buf, size_t size);

/* hf_param_name for a model of family options arch (NULL: Llama), whose extra tensors are
 * named as transformers names them: self_attn.{q,k,v}_proj.bias, self_attn.{q,k}_norm, and
 * Gemma 2's pre_feedforward_layernorm, post_attention_layernorm, post_feedforward_layernorm. */
void hf_param_name_arch(const ModelArch *arch, ParamId id, int layer, char *buf, size_t size);

/* Loads the folder dir into m (initialised here, with the family options as m->arch) and cfg: every
 * tensor the config requires
 * must be present with its shape, in F32, F16 or BF16 (converted to fp32 straight from the
 * memory map, so the file is read once); missing tensors are named, extra ones listed. The
 * model keeps Hugging Face's rotary convention (ROPE_HALF_SPLIT). */
int hf_model_load(Model *m, HfConfig *cfg, const char *dir, CkError *err);

/* hf_model_load with the matrices (model_param_is_matrix) held as `held`: BF16/F16 tensors
 * stored in that dtype are used in place in the memory-mapped files, others are converted a
 * block of rows at a time (WEIGHT_Q8: per-group absmax int8, group 64 when every input width
 * allows it, else 32); norms and biases are read as fp32. F32, F16 and BF16 files convert to
 * any held dtype; every tensor's shape and dtype (and Q8's group) is checked before any weight
 * is read. WEIGHT_F32 is hf_model_load. */
int hf_model_load_held(Model *m, HfConfig *cfg, const char *dir, WeightDtype held, CkError *err);

/* Writes m into dir (created if missing) as config.json and model.safetensors in dtype
 * (ST_F32, ST_F16 or ST_BF16), with metadata {"format": "pt", "cutkit_version", "command_line"}.
 * A model in llama2.c's interleaved rotary convention has its q/k rows permuted on the way
 * out, so that transformers computes the same function. The config is written in m->arch's
 * architecture with its options (hf_config_to_json_arch). Each file is written atomically. */
int hf_model_save(const Model *m, const HfConfig *cfg, const char *dir, SafetensorsDtype dtype,
                  const char *command_line, CkError *err);

/* Converts m's q and k projections to the rotary convention `style` in place, by the row
 * permutation of Hugging Face's own Llama conversion (within each head, interleaved pair
 * (2i, 2i+1) becomes rows (i, i + hs/2)), and records the style in m->config. */
void model_set_rope_style(Model *m, RopeStyle style);

/* Permutes the rows of each of n_heads heads of w (hs rows of `cols` columns each) between
 * the interleaved and the half-split rotary order (to_half_split selects the direction);
 * tmp has room for hs * cols floats. Also used for LoRA B matrices of q_proj and k_proj. */
void rope_permute_rows(float *w, int n_heads, int hs, int cols, int to_half_split, float *tmp);

#endif
