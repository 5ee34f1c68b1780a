#!/usr/bin/python3
"""PyTorch reference of one cutkit training step, for bench/run_train.sh.

Loads a llama2.c checkpoint with bench/torch_ref.py's loader and trains the same model as
cutkit-bench-train does, step for step:

  zero_grad -> forward -> mean cross-entropy over every next token (T - 1 per sequence)
  -> backward -> clip_grad_norm_(max_norm) -> torch.optim.AdamW step

fp32, torch.set_num_threads(--threads). The batch is B sequences of T token ids drawn with
splitmix64 from --seed, exactly as bench_train.c draws them, and every step trains on that same
batch, so the losses printed by both sides can be compared (loss_first should agree to ~1e-5).

Full fine-tuning trains every parameter (the classifier is tied to the token embedding when the
checkpoint says so). --lora freezes the base and adds, by hand, y = W x + (alpha / r) B (A x) on
the chosen projections (A: (r, in), uniform in +-1/sqrt(in) as PEFT's Kaiming init, drawn with
cutkit's own xoshiro256** stream so that both sides start from the same A; B: (out, r), zero),
training only A and B.

Each layer's weights are per-layer leaf tensors (views of the loaded stacked tensors, no copy),
as an nn.Linear per layer would be: slicing one stacked parameter per layer would make autograd
build a full-size gradient for every slice.

--autocast bf16 runs the forward and the loss under torch.autocast("cpu", dtype=torch.bfloat16), as
PyTorch's documentation has users train in mixed precision on the CPU (the backward outside it;
the weights, gradients and AdamW state stay fp32, no gradient scaler is needed for bf16); the
JSON line records "autocast" ("none" or "bf16").

Prints one JSON line: {"impl":"torch","mode":"train","lora":0/1,"threads":N,"batch":B,"seq":T,
"tokens_per_s":...,"median_step_s":...,"peak_rss_mb":...,...}; tokens/s = B*T / median step
time; peak RSS is getrusage's ru_maxrss. Diagnostics go to stderr. Run with /usr/bin/python3.
"""
import argparse
import json
import math
import os
import platform
import resource
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ref  # noqa: E402  (the checkpoint loader, RoPE, RMSNorm and the BLAS report)

MASK64 = (1 << 64) - 1
MODULES = {"gate_proj": "w1", "up_proj": "w3", "down_proj": "w2",
           "q_proj": "wq", "k_proj": "wk", "v_proj": "wv", "o_proj": "wo"}


def splitmix64_tokens(seed, count, vocab):
    """The token stream of bench_train.c: splitmix64 outputs modulo vocab."""
    state, out = seed & MASK64, []
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        z ^= z >> 31
        out.append(z % vocab)
    return out


class Xoshiro256:
    """cutkit's Rng (model/rng.c): xoshiro256** seeded through splitmix64; rng_float = top 24 bits."""

    def __init__(self, seed):
        x, self.s = seed & MASK64, []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & MASK64
            z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
            self.s.append(z ^ (z >> 31))

    def floats(self, count):
        s0, s1, s2, s3 = self.s
        out = np.empty(count, dtype=np.float32)
        for i in range(count):
            r = (((s1 * 5) & MASK64) << 7 | ((s1 * 5) & MASK64) >> 57) & MASK64
            r = (r * 9) & MASK64
            t = (s1 << 17) & MASK64
            s2 ^= s0
            s3 ^= s1
            s1 ^= s2
            s0 ^= s3
            s2 ^= t
            s3 = ((s3 << 45) | (s3 >> 19)) & MASK64
            out[i] = (r >> 40) * (1.0 / 16777216.0)
        self.s = [s0, s1, s2, s3]
        return out


# cutkit's LoRA module order (model/lora.h LoraModule), which its lora_init draws A matrices in
LORA_ORDER = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class TrainModel:
    def __init__(self, cfg, w, lora_targets, lora_r, lora_alpha, seed):
        self.cfg = cfg
        self.cos, self.sin = torch_ref.rope_tables(cfg, cfg.seq_len)
        self.scale = 1.0 / math.sqrt(cfg.head_size)
        full = not lora_targets
        L = cfg.n_layers

        def leaf(t):
            return t.requires_grad_(full)

        self.emb = leaf(w["token_embedding"])
        self.wcls = self.emb if cfg.shared else leaf(w["wcls"])
        self.rms_final = leaf(w["rms_final"])
        # per-layer leaves: views into the loaded stacked tensors (detach() shares storage)
        self.layers = []
        for l in range(L):
            self.layers.append({k: leaf(w[k][l].detach()) for k in
                                ("rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3")})
        self.lora_scale = lora_alpha / lora_r if lora_targets else 0.0
        # A exactly as cutkit's lora_init draws it (same seed, same order, same float32 math),
        # so that both sides train the same adapters: bound * (2u - 1), bound = 1/sqrt(in)
        self.adapters = []  # per layer: {weight name: (A, B)}
        rng = Xoshiro256(seed) if lora_targets else None
        for l in range(L):
            ad = {}
            for mod in LORA_ORDER:
                if mod not in lora_targets:
                    continue
                wname = MODULES[mod]
                out_f, in_f = self.layers[l][wname].shape
                bound = np.float32(1.0) / np.sqrt(np.float32(in_f))
                u = rng.floats(lora_r * in_f)
                a = torch.from_numpy((bound * (np.float32(2.0) * u - np.float32(1.0))).reshape(lora_r, in_f))
                ad[wname] = (a.requires_grad_(True), torch.zeros(out_f, lora_r, requires_grad=True))
            self.adapters.append(ad)

    def parameters(self):
        if self.adapters and self.adapters[0]:
            return [t for ad in self.adapters for ab in ad.values() for t in ab]
        ps = [self.emb] + ([] if self.cfg.shared else [self.wcls]) + [self.rms_final]
        for layer in self.layers:
            ps.extend(layer.values())
        return ps

    def linear(self, x, l, name):
        y = F.linear(x, self.layers[l][name])
        ab = self.adapters[l].get(name)
        if ab is not None:
            y = y + F.linear(F.linear(x, ab[0]), ab[1]) * self.lora_scale
        return y

    def loss(self, tokens):
        """Mean cross-entropy of tokens[:, 1:] given tokens[:, :-1] (teacher forcing)."""
        c = self.cfg
        B, T = tokens.shape
        H, KV, G, hs = c.n_heads, c.n_kv_heads, c.group, c.head_size
        cos, sin = self.cos[:T], self.sin[:T]
        mask = torch.full((T, T), float("-inf")).triu_(1)
        x = F.embedding(tokens, self.emb)
        for l in range(c.n_layers):
            p = self.layers[l]
            h = torch_ref.rmsnorm(x, p["rms_att"])
            q = torch_ref.apply_rope(self.linear(h, l, "wq").view(B, T, H, hs), cos, sin)
            k = torch_ref.apply_rope(self.linear(h, l, "wk").view(B, T, KV, hs), cos, sin)
            v = self.linear(h, l, "wv").view(B, T, KV, hs)
            q = q.transpose(1, 2).reshape(B, KV, G * T, hs)
            k = k.transpose(1, 2)
            v = v.transpose(1, 2)
            att = torch.matmul(q, k.transpose(-1, -2)).view(B, KV, G, T, T)
            att = att * self.scale + mask
            att = torch.softmax(att, dim=-1).view(B, KV, G * T, T)
            o = torch.matmul(att, v).view(B, H, T, hs).transpose(1, 2).reshape(B, T, c.dim)
            x = x + self.linear(o, l, "wo")
            h = torch_ref.rmsnorm(x, p["rms_ffn"])
            a = F.silu(self.linear(h, l, "w1")) * self.linear(h, l, "w3")
            x = x + self.linear(a, l, "w2")
        # only the positions that have a next token go through the classifier
        x = torch_ref.rmsnorm(x[:, :-1], self.rms_final).reshape(B * (T - 1), c.dim)
        logits = F.linear(x, self.wcls)
        return F.cross_entropy(logits, tokens[:, 1:].reshape(-1))


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def parse_args(argv):
    p = argparse.ArgumentParser(description="PyTorch reference of a cutkit training step.")
    p.add_argument("--model", required=True, help="llama2.c checkpoint (version 0 or 1)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's default)")
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--lora", action="store_true", help="train LoRA adapters on a frozen base")
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--lora-alpha", type=float, default=32.0)
    p.add_argument("--lora-targets", default="gate_proj,up_proj,down_proj")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--autocast", choices=("none", "bf16"), default="none",
                   help="forward and loss under torch.autocast('cpu', dtype=torch.bfloat16)")
    p.add_argument("--foreach", action="store_true", help="torch.optim.AdamW(foreach=True)")
    p.add_argument("--zero-grad", choices=("none", "zero"), default="none",
                   help="zero_grad(set_to_none=True) (none, default) or zero the gradients in place")
    a = p.parse_args(argv)
    if a.batch <= 0 or a.seq < 2 or a.steps <= 0 or a.warmup < 0 or a.lora_r <= 0:
        p.error("--batch, --steps and --lora-r must be positive, --seq >= 2, --warmup >= 0")
    if a.threads is not None and a.threads <= 0:
        p.error("--threads must be positive")
    targets = [t.strip() for t in a.lora_targets.split(",") if t.strip()] if a.lora else []
    bad = [t for t in targets if t not in MODULES]
    if bad or (a.lora and not targets):
        p.error(f"--lora-targets: unknown or empty module list {a.lora_targets!r}")
    a.targets = targets
    return a


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    cfg, w = torch_ref.load_checkpoint(a.model)
    if a.seq > cfg.seq_len:
        raise SystemExit(f"torch_train_ref: --seq {a.seq} > model seq_len {cfg.seq_len}")
    model = TrainModel(cfg, w, a.targets, a.lora_r, a.lora_alpha, a.seed)
    del w
    params = model.parameters()
    n_train = sum(p.numel() for p in params)
    opt_kw = {"foreach": True} if a.foreach else {}
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01, **opt_kw)
    ids = splitmix64_tokens(a.seed, a.batch * a.seq, cfg.vocab)
    tokens = torch.tensor(ids, dtype=torch.int64).view(a.batch, a.seq)

    times, t_fwd, t_bwd, t_clip, t_opt, losses, norms = [], [], [], [], [], [], []
    for step in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=(a.zero_grad == "none"))
        with torch_ref.autocast_context(a.autocast):
            loss = model.loss(tokens)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        norm = torch.nn.utils.clip_grad_norm_(params, a.max_grad_norm)
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        losses.append(float(loss))
        norms.append(float(norm))
        print(f"torch_train_ref: step {step + 1}{' (warm-up)' if step < a.warmup else ''}: "
              f"loss {losses[-1]:.6f}, grad norm {norms[-1]:.6f}, {t4 - t0:.3f} s", file=sys.stderr)
        if step >= a.warmup:
            times.append(t4 - t0)
            t_fwd.append(t1 - t0)
            t_bwd.append(t2 - t1)
            t_clip.append(t3 - t2)
            t_opt.append(t4 - t3)
    med = statistics.median(times)
    blas = torch_ref.blas_report()
    res = {"impl": "torch", "mode": "train", "lora": int(a.lora), "threads": torch.get_num_threads(),
           "batch": a.batch, "seq": a.seq, "tokens_per_s": round(a.batch * a.seq / med, 1),
           "median_step_s": med, "peak_rss_mb": round(peak_rss_mb(), 1),
           "mean_step_s": statistics.mean(times), "min_step_s": min(times),
           "steps": a.steps, "warmup": a.warmup,
           "median_fwd_s": statistics.median(t_fwd), "median_bwd_s": statistics.median(t_bwd),
           "median_clip_s": statistics.median(t_clip), "median_adamw_s": statistics.median(t_opt),
           "loss_first": losses[0], "loss_last": losses[-1],
           "grad_norm_first": norms[0], "grad_norm_last": norms[-1],
           "trained_params": n_train, "lora_r": a.lora_r if a.lora else 0, "lr": a.lr,
           "foreach": bool(a.foreach), "zero_grad": a.zero_grad, "autocast": a.autocast,
           "model": os.path.basename(a.model), "torch": torch.__version__,
           "python": platform.python_version(), "blas": blas["name"], "blas_detail": blas,
           "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                              "OPENBLAS_CORETYPE", "LD_LIBRARY_PATH")
                   if k in os.environ}}
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
