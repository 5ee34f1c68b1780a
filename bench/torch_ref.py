#!/usr/bin/python3
"""PyTorch reference of the llama2.c model, for benchmarking cutkit against it.

Reads llama2.c checkpoints: legacy version 0 (7 int32 header; negative vocab_size = separate
classifier; RoPE tables in the file are skipped) and version 1 (256-byte header, see make_model.py).
The math follows llama2.c run.c: RMSNorm x*g/sqrt(mean(x^2)+1e-5); RoPE on adjacent pairs
(2i, 2i+1) of each head with freq = 10000^(-2i/head_size), on q and k; grouped-query attention
(query head h reads kv head h // (n_heads/n_kv_heads)); causal softmax attention scaled by
1/sqrt(head_size); FFN w2(silu(w1 x) * (w3 x)); classifier = token embedding when shared.

Modes (each prints exactly one JSON line on stdout; diagnostics go to stderr):
  score     teacher-forced no-grad forward over a (batch, seq) block of seeded random token ids,
            log_softmax and gather of the next token; tokens/s = batch*seq / median time.
            (seq+1 ids are drawn per row: the first seq are the input, the last seq the targets.)
  generate  greedy decoding with a KV cache, batch 1, starting from BOS (id 1), --steps forward
            passes (one new token each); tokens/s = steps / median time.
  check     logits at position 0 after BOS (first 8, top-5 ids and values, sum) and, with --ids,
            the teacher-forced mean NLL of that id sequence. --selftest asserts the stories260K
            golden values from shared/models/stories260K/PROVENANCE.md.

--autocast bf16 (score mode) runs each pass under torch.autocast("cpu", dtype=torch.bfloat16), as
PyTorch users run bf16 on CPU: the products (linear, matmul) take bf16 inputs through oneDNN and
return bf16, the rest runs in the dtype autocast picks (in torch 1.13, log_softmax of the bf16
logits stays bf16). The JSON line records "autocast" ("none" or "bf16").

Run it with Debian's /usr/bin/python3 (it has torch 1.13). Which BLAS torch uses is read from
/proc/self/maps and reported as "blas".
"""
import argparse
import contextlib
import ctypes
import json
import math
import os
import platform
import re
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

MAGIC = 0x616B3432
BOS = 1
EPS = 1e-5

HERE = os.path.dirname(os.path.abspath(__file__))
STORIES260K = os.path.normpath(os.path.join(HERE, "..", "core", "formats", "data", "stories260K.bin"))

# Golden values for stories260K (shared/models/stories260K/PROVENANCE.md).
GOLD_HEADER = (64, 172, 5, 8, 4, 512, 512)
GOLD_LOGITS_0_4 = [-6.22291, 8.40434, -6.22374, -6.22254]
GOLD_TOP5 = [403, 385, 410, 317, 407]
GOLD_TOP5_VALUES = [17.0235, 15.4062, 13.1083, 12.7692, 12.4181]
GOLD_LOGIT_SUM = -1070.172
GOLD_GREEDY_40 = [403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338,
                  401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385,
                  328, 432, 358, 394, 261, 370, 432, 352]
# "Once upon a time, there was a little girl named Lily. She loved to play outside in the park."
# = BOS + the first 31 greedy ids (32 tokens, 31 predictions); mean NLL 0.180355 nats/token.
GOLD_NLL_IDS = [BOS] + GOLD_GREEDY_40[:31]
GOLD_NLL = 0.180355


# ---------------------------------------------------------------------------------------------
# checkpoint loading

class Config:
    def __init__(self, dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len, shared, version):
        self.dim, self.hidden, self.n_layers = dim, hidden, n_layers
        self.n_heads, self.n_kv_heads, self.vocab, self.seq_len = n_heads, n_kv_heads, vocab, seq_len
        self.shared, self.version = shared, version
        if min(dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len) <= 0:
            raise ValueError("checkpoint header has a non-positive size")
        if dim % n_heads or n_heads % n_kv_heads or (dim // n_heads) % 2:
            raise ValueError("inconsistent head sizes in checkpoint header")
        self.head_size = dim // n_heads
        self.kv_dim = self.head_size * n_kv_heads
        self.group = n_heads // n_kv_heads

    def as_dict(self):
        return dict(dim=self.dim, hidden_dim=self.hidden, n_layers=self.n_layers, n_heads=self.n_heads,
                    n_kv_heads=self.n_kv_heads, vocab_size=self.vocab, seq_len=self.seq_len,
                    shared_classifier=self.shared, version=self.version)


def load_checkpoint(path):
    """Return (Config, dict of float32 torch tensors)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 28:
        raise ValueError(f"{path}: too short for a llama2.c checkpoint")
    (magic,) = struct.unpack_from("<I", data, 0)
    if magic == MAGIC:
        (version,) = struct.unpack_from("<i", data, 4)
        if version != 1:
            raise ValueError(f"{path}: llama2.c checkpoint version {version} is not supported (only 0 and 1)")
        dim, hidden, L, H, KV, vocab, seq = struct.unpack_from("<7i", data, 8)
        shared = data[36] != 0
        offset = 256
    else:
        version = 0
        dim, hidden, L, H, KV, vocab, seq = struct.unpack_from("<7i", data, 0)
        shared = vocab > 0
        vocab = abs(vocab)
        offset = 28
    cfg = Config(dim, hidden, L, H, KV, vocab, seq, shared, version)
    d, hd, kvd = cfg.dim, cfg.hidden, cfg.kv_dim
    layer = [("wq", (L, d, d)), ("wk", (L, kvd, d)), ("wv", (L, kvd, d)), ("wo", (L, d, d))]
    ffn = [("w1", (L, hd, d)), ("w2", (L, d, hd)), ("w3", (L, hd, d))]
    rope_skip = cfg.seq_len * cfg.head_size // 2
    if version == 0:
        order = ([("token_embedding", (vocab, d)), ("rms_att", (L, d))] + layer + [("rms_ffn", (L, d))]
                 + ffn + [("rms_final", (d,)), (None, (rope_skip,)), (None, (rope_skip,))])
    else:
        order = ([("rms_att", (L, d)), ("rms_ffn", (L, d)), ("rms_final", (d,)),
                  ("token_embedding", (vocab, d))] + layer + ffn)
    if not shared:
        order.append(("wcls", (vocab, d)))
    need = offset + 4 * sum(int(np.prod(s)) for _, s in order)
    if len(data) != need:
        raise ValueError(f"{path}: {len(data)} bytes, but a version-{version} checkpoint with this "
                         f"header has {need}")
    w = {}
    for name, shape in order:
        n = int(np.prod(shape))
        if name is not None:
            arr = np.frombuffer(data, dtype="<f4", count=n, offset=offset).astype(np.float32).reshape(shape)
            w[name] = torch.from_numpy(arr.copy())
        offset += 4 * n
    if shared:
        w["wcls"] = w["token_embedding"]
    return cfg, w


# ---------------------------------------------------------------------------------------------
# the model

def rope_tables(cfg, n_pos):
    """cos/sin of shape (n_pos, head_size/2), computed in float32 as run.c does."""
    hs = cfg.head_size
    j = torch.arange(0, hs, 2, dtype=torch.float32)
    freq = 1.0 / torch.pow(torch.tensor(10000.0, dtype=torch.float32), j / hs)
    ang = torch.arange(n_pos, dtype=torch.float32)[:, None] * freq[None, :]
    return torch.cos(ang), torch.sin(ang)


def rmsnorm(x, g):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * g


def apply_rope(x, cos, sin):
    """x: (..., T, heads, hs); cos/sin: (T, hs/2). Rotates pairs (2i, 2i+1)."""
    xr = x.unflatten(-1, (-1, 2))
    x0, x1 = xr[..., 0], xr[..., 1]
    c, s = cos[:, None, :], sin[:, None, :]
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)


class Llama:
    def __init__(self, cfg, w):
        self.cfg, self.w = cfg, w
        self.cos, self.sin = rope_tables(cfg, cfg.seq_len)
        self.scale = 1.0 / math.sqrt(cfg.head_size)

    def logits(self, tokens):
        """Teacher-forced forward. tokens: (B, T) int64 -> logits (B, T, vocab)."""
        c, w = self.cfg, self.w
        B, T = tokens.shape
        if T > c.seq_len:
            raise ValueError(f"sequence length {T} > model seq_len {c.seq_len}")
        H, KV, G, hs = c.n_heads, c.n_kv_heads, c.group, c.head_size
        cos, sin = self.cos[:T], self.sin[:T]
        mask = torch.full((T, T), float("-inf")).triu_(1)
        x = F.embedding(tokens, w["token_embedding"])
        for l in range(c.n_layers):
            h = rmsnorm(x, w["rms_att"][l])
            q = apply_rope(F.linear(h, w["wq"][l]).view(B, T, H, hs), cos, sin)
            k = apply_rope(F.linear(h, w["wk"][l]).view(B, T, KV, hs), cos, sin)
            v = F.linear(h, w["wv"][l]).view(B, T, KV, hs)
            # head-major, contiguous, so that each matmul below is one batched GEMM without copies.
            # Query head h = kv * G + g reads kv head kv = h // G: stack the G query heads of a kv head.
            q = q.transpose(1, 2).reshape(B, KV, G * T, hs)
            k = k.transpose(1, 2).contiguous()  # (B, KV, T, hs)
            v = v.transpose(1, 2).contiguous()  # (B, KV, T, hs)
            att = torch.matmul(q, k.transpose(-1, -2)).view(B, KV, G, T, T)
            att.mul_(self.scale).add_(mask)
            att = torch.softmax(att, dim=-1).view(B, KV, G * T, T)
            o = torch.matmul(att, v).view(B, H, T, hs).transpose(1, 2).reshape(B, T, c.dim)
            x = x + F.linear(o, w["wo"][l])
            h = rmsnorm(x, w["rms_ffn"][l])
            x = x + F.linear(F.silu(F.linear(h, w["w1"][l])) * F.linear(h, w["w3"][l]), w["w2"][l])
        x = rmsnorm(x, w["rms_final"])
        return F.linear(x, w["wcls"])

    def nll(self, inputs, targets):
        """Per-token negative log-likelihood of targets given inputs, both (B, T)."""
        logp = torch.log_softmax(self.logits(inputs), dim=-1)
        return -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)

    def generate(self, steps, first=BOS, return_logits=False):
        """Greedy decoding with a KV cache; steps forward passes, returns the steps new ids."""
        c, w = self.cfg, self.w
        if steps > c.seq_len:
            raise ValueError(f"--steps {steps} > model seq_len {c.seq_len}")
        H, KV, G, hs, L = c.n_heads, c.n_kv_heads, c.group, c.head_size, c.n_layers
        kc = torch.zeros(L, KV, steps, hs)
        vc = torch.zeros(L, KV, steps, hs)
        out, all_logits = [], []
        token = first
        emb = w["token_embedding"]
        mv = torch.mv  # one token: matrix-vector products (BLAS gemv; F.linear would run a 1-row gemm)
        for pos in range(steps):
            cos, sin = self.cos[pos:pos + 1], self.sin[pos:pos + 1]
            x = emb[token]
            for l in range(L):
                h = rmsnorm(x, w["rms_att"][l])
                q = apply_rope(mv(w["wq"][l], h).view(1, H, hs), cos, sin)
                k = apply_rope(mv(w["wk"][l], h).view(1, KV, hs), cos, sin)
                kc[l, :, pos] = k[0]
                vc[l, :, pos] = mv(w["wv"][l], h).view(KV, hs)
                kk, vv = kc[l, :, :pos + 1], vc[l, :, :pos + 1]          # (KV, P, hs)
                att = torch.bmm(q.view(KV, G, hs), kk.transpose(1, 2)).mul_(self.scale)
                o = torch.bmm(torch.softmax(att, dim=-1), vv).view(c.dim)
                x = x + mv(w["wo"][l], o)
                h = rmsnorm(x, w["rms_ffn"][l])
                x = x + mv(w["w2"][l], F.silu(mv(w["w1"][l], h)) * mv(w["w3"][l], h))
            logits = mv(w["wcls"], rmsnorm(x, w["rms_final"]))
            if return_logits:
                all_logits.append(logits.clone())
            token = int(torch.argmax(logits))
            out.append(token)
        return (out, all_logits) if return_logits else out


# ---------------------------------------------------------------------------------------------
# environment report

def blas_report():
    """Which BLAS/LAPACK libraries this process has mapped, and what OpenBLAS says about itself."""
    libs = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) < 6:
                continue
            path = parts[5].strip()
            base = os.path.basename(path)
            if re.search(r"openblas|libblas|liblapack|libcblas|mkl|blis|libgomp|libiomp|libomp", base):
                if path not in libs:
                    libs.append(path)
    info = {"libs": libs}
    ob = [p for p in libs if "openblas" in os.path.basename(p)]
    if ob:
        path = ob[0]
        d = os.path.basename(os.path.dirname(os.path.realpath(path)))
        name = d if d.startswith("openblas") else "openblas"
        try:
            lib = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
            lib.openblas_get_config.restype = ctypes.c_char_p
            lib.openblas_get_corename.restype = ctypes.c_char_p
            info["config"] = lib.openblas_get_config().decode(errors="replace").strip()
            info["core"] = lib.openblas_get_corename().decode(errors="replace").strip()
            par = lib.openblas_get_parallel()
            info["parallel"] = {0: "serial", 1: "pthread", 2: "openmp"}.get(par, str(par))
            info["num_threads"] = lib.openblas_get_num_threads()
            if name == "openblas":
                name = "openblas-" + info["parallel"]
        except (OSError, AttributeError) as e:
            info["error"] = str(e)
        info["name"] = name
    else:
        info["name"] = "+".join(os.path.basename(p) for p in libs if "blas" in p) or "none"
    return info


# ---------------------------------------------------------------------------------------------
# modes

def timed(fn, repeats, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def autocast_context(kind):
    """torch.autocast on the CPU for kind "bf16"; no context for "none"."""
    if kind == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def mode_score(model, a):
    g = torch.Generator().manual_seed(a.seed)
    ids = torch.randint(0, model.cfg.vocab, (a.batch, a.seq + 1), generator=g, dtype=torch.int64)
    inputs, targets = ids[:, :-1].contiguous(), ids[:, 1:].contiguous()
    last = {}

    def step():
        with torch.inference_mode(), autocast_context(a.autocast):
            last["nll"] = float(model.nll(inputs, targets).float().mean())

    times = timed(step, a.repeats, a.warmup)
    med = statistics.median(times)
    return dict(batch=a.batch, seq=a.seq, tokens_per_s=a.batch * a.seq / med, median_s=med,
                min_s=min(times), repeats=a.repeats, warmup=a.warmup, mean_nll=last["nll"])


def mode_generate(model, a):
    last = {}

    def run():
        with torch.inference_mode():
            last["ids"] = model.generate(a.steps)

    times = timed(run, a.repeats, a.warmup)
    med = statistics.median(times)
    return dict(batch=1, steps=a.steps, tokens_per_s=a.steps / med, median_s=med, min_s=min(times),
                repeats=a.repeats, warmup=a.warmup, first_ids=last["ids"][:16])


def mode_check(model, a):
    with torch.inference_mode():
        logits = model.logits(torch.tensor([[BOS]]))[0, 0]
        top = torch.topk(logits, 5)
        res = dict(logits_0_8=[round(float(v), 5) for v in logits[:8]],
                   top5_ids=[int(i) for i in top.indices],
                   top5_values=[round(float(v), 4) for v in top.values],
                   logit_sum=round(float(logits.sum()), 3))
        ids = None
        if a.ids:
            ids = [int(t) for t in re.split(r"[,\s]+", a.ids.strip()) if t]
        elif a.selftest:
            ids = GOLD_NLL_IDS
        if ids is not None:
            if len(ids) < 2 or max(ids) >= model.cfg.vocab or min(ids) < 0:
                raise ValueError("--ids needs at least 2 ids, each in [0, vocab)")
            t = torch.tensor([ids])
            res["nll_ids"] = len(ids)
            res["mean_nll"] = round(float(model.nll(t[:, :-1], t[:, 1:]).mean()), 6)
        steps = min(40, model.cfg.seq_len)
        greedy, glogits = model.generate(steps, return_logits=True)
        res["greedy_ids"] = greedy
        # the KV-cache path and the teacher-forced path must agree on the same sequence
        tf = model.logits(torch.tensor([[BOS] + greedy[:-1]]))[0]
        res["kv_vs_full_max_abs_diff"] = float((tf - torch.stack(glogits)).abs().max())
    if a.selftest:
        selftest(model, res)
        res["selftest"] = "pass"
    return res


def selftest(model, res):
    c = model.cfg
    hdr = (c.dim, c.hidden, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab, c.seq_len)
    errors = []
    if hdr != GOLD_HEADER or not c.shared:
        errors.append(f"model header {hdr} shared={c.shared} is not stories260K {GOLD_HEADER}")
    else:
        got = res["logits_0_8"][:4]
        if any(abs(x - y) > 2e-4 for x, y in zip(got, GOLD_LOGITS_0_4)):
            errors.append(f"logits[0:4] {got} != {GOLD_LOGITS_0_4}")
        if res["top5_ids"] != GOLD_TOP5:
            errors.append(f"top-5 ids {res['top5_ids']} != {GOLD_TOP5}")
        if any(abs(x - y) > 2e-3 for x, y in zip(res["top5_values"], GOLD_TOP5_VALUES)):
            errors.append(f"top-5 values {res['top5_values']} != {GOLD_TOP5_VALUES}")
        if abs(res["logit_sum"] - GOLD_LOGIT_SUM) > 0.05:
            errors.append(f"sum(logits) {res['logit_sum']} != {GOLD_LOGIT_SUM}")
        if res["greedy_ids"] != GOLD_GREEDY_40:
            errors.append(f"greedy ids {res['greedy_ids']} != {GOLD_GREEDY_40}")
        if res.get("nll_ids") == len(GOLD_NLL_IDS) and abs(res["mean_nll"] - GOLD_NLL) > 1e-4:
            errors.append(f"mean NLL {res['mean_nll']} != {GOLD_NLL}")
    if res["kv_vs_full_max_abs_diff"] > 1e-3:
        errors.append(f"KV-cache and full forward disagree by {res['kv_vs_full_max_abs_diff']}")
    if errors:
        for e in errors:
            print("torch_ref selftest FAILED: " + e, file=sys.stderr)
        raise SystemExit(1)
    print("torch_ref selftest: stories260K logits, top-5, greedy ids and NLL match PROVENANCE.md",
          file=sys.stderr)


def parse_args(argv):
    p = argparse.ArgumentParser(description="PyTorch reference of the llama2.c model (benchmark side).")
    p.add_argument("--model", help="llama2.c checkpoint (version 0 or 1); default with --selftest: stories260K")
    p.add_argument("--mode", choices=("score", "generate", "check"), default="score")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--steps", type=int, default=256, help="generate: tokens to produce")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's default)")
    p.add_argument("--repeats", type=int, help="timed repeats (default: score 7, generate 3)")
    p.add_argument("--warmup", type=int, help="untimed warm-up repeats (default: score 2, generate 1)")
    p.add_argument("--seed", type=int, default=1234, help="seed of the random token ids (score)")
    p.add_argument("--autocast", choices=("none", "bf16"), default="none",
                   help="score: run each pass under torch.autocast('cpu', dtype=torch.bfloat16)")
    p.add_argument("--ids", help="check: comma-separated ids whose teacher-forced mean NLL to report")
    p.add_argument("--selftest", action="store_true",
                   help="check mode on stories260K, asserting the PROVENANCE.md golden values")
    a = p.parse_args(argv)
    if a.selftest:
        a.mode = "check"
        a.model = a.model or STORIES260K
    if not a.model:
        p.error("--model is required")
    if a.repeats is None:
        a.repeats = 3 if a.mode == "generate" else 7
    if a.warmup is None:
        a.warmup = 1 if a.mode == "generate" else 2
    for k in ("batch", "seq", "steps", "repeats"):
        if getattr(a, k) <= 0:
            p.error(f"--{k} must be positive")
    if a.autocast != "none" and a.mode != "score":
        p.error("--autocast applies to --mode score only")
    if a.warmup < 0 or (a.threads is not None and a.threads <= 0):
        p.error("--warmup must be >= 0 and --threads > 0")
    return a


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    cfg, w = load_checkpoint(a.model)
    model = Llama(cfg, w)
    if a.mode == "score" and a.seq > cfg.seq_len:
        raise SystemExit(f"torch_ref: --seq {a.seq} > model seq_len {cfg.seq_len}")
    res = {"impl": "torch", "mode": a.mode, "threads": torch.get_num_threads(), "autocast": a.autocast}
    res.update({"score": mode_score, "generate": mode_generate, "check": mode_check}[a.mode](model, a))
    blas = blas_report()
    res.update(model=os.path.basename(a.model), config=cfg.as_dict(), torch=torch.__version__,
               python=platform.python_version(), blas=blas["name"], blas_detail=blas,
               env={k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "LD_LIBRARY_PATH")
                    if k in os.environ})
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
