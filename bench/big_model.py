#!/usr/bin/env python3
"""big_model.py OUT_DIR [--layers N] — writes a Llama-2-7B-shaped Hugging Face folder of random
weights stored as BF16 safetensors (13.5 GB at 32 layers), in chunks, for bench/run_big.sh.

Only the standard library: each matrix's bytes are made 8 MiB at a time from os.urandom, the low
byte of every bf16 value random (7 mantissa bits and the exponent's lowest bit) and the high byte
the sign and exponents 2^-9 or 2^-8 (so |w| is in [2^-9, 2^-7)); norms are ones.
Nothing is ever held whole in memory."""
import json
import os
import struct
import sys

C, H, L, NH, V = 4096, 11008, 32, 32, 32000


def tensors(layers):
    yield "model.embed_tokens.weight", [V, C], True
    for l in range(layers):
        p = f"model.layers.{l}."
        yield p + "input_layernorm.weight", [C], False
        for n in "qkvo":
            yield p + f"self_attn.{n}_proj.weight", [C, C], True
        yield p + "post_attention_layernorm.weight", [C], False
        yield p + "mlp.gate_proj.weight", [H, C], True
        yield p + "mlp.up_proj.weight", [H, C], True
        yield p + "mlp.down_proj.weight", [C, H], True
    yield "model.norm.weight", [C], False
    yield "lm_head.weight", [V, C], True


HIGH = bytes((0x3B if b & 1 else 0xBB) for b in range(256))  # sign and the exponent's high 7 bits (2^-9 or 2^-8)


def random_bf16(n_values):
    """n_values random small bf16 values, little-endian."""
    out = bytearray(2 * n_values)
    out[0::2] = os.urandom(n_values)
    out[1::2] = os.urandom(n_values).translate(HIGH)
    return out


def main():
    out = sys.argv[1]
    layers = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--layers" else L
    os.makedirs(out, exist_ok=True)
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    items = list(tensors(layers))
    for name, shape, _ in items:
        n = 2
        for d in shape:
            n *= d
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    one = struct.pack("<H", 0x3F80)  # bf16 1.0
    tmp = os.path.join(out, "model.safetensors.tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name, shape, matrix in items:
            n = 1
            for d in shape:
                n *= d
            if not matrix:
                f.write(one * n)
                continue
            chunk = 4 << 20
            for start in range(0, n, chunk):
                f.write(random_bf16(min(chunk, n - start)))
    os.replace(tmp, os.path.join(out, "model.safetensors"))
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": C,
              "intermediate_size": H, "num_hidden_layers": layers, "num_attention_heads": NH,
              "num_key_value_heads": NH, "vocab_size": V, "max_position_embeddings": 4096,
              "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu",
              "tie_word_embeddings": False, "torch_dtype": "bfloat16"}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)


if __name__ == "__main__":
    main()
