#!/usr/bin/env python3
"""LoRA trained by cutkit, checked by PyTorch applying PEFT's formula.

cutkit trains a LoRA adapter (all seven modules) on the embedded stories260K for a few
steps and saves it in PEFT's format; `cutkit score --adapter` prints per-token log-probs.
This script rebuilds the same function independently: the base weights read from the
llama2.c file and laid out as Hugging Face's conversion lays them out, each adapted weight
replaced by W + (lora_alpha / r) B A from adapter_config.json and adapter_model.safetensors
(parsed here from the file format), and transformers' Llama math in float64. The log-probs
must agree within 1e-4.

Usage: check_lora_peft.py CUTKIT_BINARY SOURCE_DIR   (exit 77 = skipped: no torch)
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError:
    print("skipping: python3-torch is not installed")
    sys.exit(77)

CUTKIT, SOURCE = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(SOURCE, "tests", "fixtures"))
import make_hf_logits as ref  # noqa: E402

TEXT = ("Once upon a time, there was a little girl named Lily. She loved to play outside in "
        "the park. One day, she saw a big, red ball.")
MODULES = {"q_proj": ("self_attn", "wq"), "k_proj": ("self_attn", "wk"),
           "v_proj": ("self_attn", "wv"), "o_proj": ("self_attn", "wo"),
           "gate_proj": ("mlp", "w1"), "up_proj": ("mlp", "w3"), "down_proj": ("mlp", "w2")}


def read_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", t["dtype"]
        begin, end = t["data_offsets"]
        out[name] = torch.tensor(np.frombuffer(data[begin:end], dtype="<f4").reshape(t["shape"]),
                                 dtype=torch.float64)
    return out


def run(args):
    return subprocess.run([CUTKIT] + args, check=True, capture_output=True, text=True).stdout


def main():
    with tempfile.TemporaryDirectory() as tmp:
        corpus = os.path.join(tmp, "text.txt")
        with open(corpus, "w") as f:
            f.write(TEXT * 4)
        run(["train", "--data", corpus, "--out", os.path.join(tmp, "run"), "--lora",
             "--lora-targets", "all", "--lora-r", "4", "--lora-alpha", "8", "--lora-dropout", "0",
             "--steps", "6", "--batch-size", "2", "--seq-len", "32", "--lr", "0.02",
             "--schedule", "constant", "--warmup", "0", "--threads", "1"])
        adapter = os.path.join(tmp, "run", "adapter")
        scored = json.loads(run(["score", "--adapter", adapter, "--text", TEXT]))
        cfg_json = json.load(open(os.path.join(adapter, "adapter_config.json")))
        tensors = read_safetensors(os.path.join(adapter, "adapter_model.safetensors"))
    cfg, w = ref.read_llama2c_v0(os.path.join(SOURCE, "core", "formats", "data", "stories260K.bin"))
    hf = ref.to_hf(cfg, w)
    scale = cfg_json["lora_alpha"] / cfg_json["r"]
    moved = 0.0
    for name, (block, key) in MODULES.items():
        assert name in cfg_json["target_modules"], name
        stacked = hf[key].clone()
        for l in range(cfg["layers"]):
            prefix = f"base_model.model.model.layers.{l}.{block}.{name}"
            a, b = tensors[prefix + ".lora_A.weight"], tensors[prefix + ".lora_B.weight"]
            delta = scale * (b @ a)  # PEFT: W + (alpha / r) B A
            moved = max(moved, float(delta.abs().max()))
            stacked[l] = stacked[l] + delta
        hf[key] = stacked
    tokens = scored["tokens"]
    logits = ref.forward(cfg, hf, tokens)
    logp = torch.log_softmax(logits, dim=-1)
    want = [float(logp[i, tokens[i + 1]]) for i in range(len(tokens) - 1)]
    got = scored["logprobs"]
    diff = max(abs(a - b) for a, b in zip(want, got))
    print(f"adapter deltas up to {moved:.3g}; {len(got)} log-probs, max |cutkit - torch| = "
          f"{diff:.3g}")
    if moved < 1e-3:
        print("FAIL: training left the adapter at zero; the check would prove nothing")
        return 1
    if diff > 1e-4:
        print("FAIL: cutkit with the adapter differs from PEFT's formula in PyTorch")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
