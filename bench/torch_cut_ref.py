#!/usr/bin/python3
"""PyTorch reference of one CUT training step, for bench/run_cut.sh (cutkit's side:
bench/bench_cut.c, same flags, same batch, same JSON keys).

The step is the CUT reference's (cut-spec.md §2), written here for speed the way one would in
PyTorch:

  zero_grad -> one forward over the stacked [A_1..B; M_1..B] (right-padded to the longest, a
  multiple of 8, as the reference's collator does; causal, so padding never reaches a valid
  position) -> log_softmax of the response positions only -> pA, pM at the labels ->
  U = (pA / pM).detach() > lambda -> L_A = NLL mean over the A response tokens, L_M = -(1/N)
  sum(alpha log(1 - pM) on U, log pM elsewhere) with the reference's + 1e-5 where q == 0 ->
  (L_A + L_M) / 2 -> backward -> clip_grad_norm_(1.0) -> AdamW

(the reference itself runs the classifier and softmax over every position, prompts included;
only the positions with a label go through it here, so this is the faster of the two). --objective
mle trains the same batch with the mean cross-entropy of every response target instead.

Model, weights, LoRA and the optimizer come from torch_train_ref.py (the llama2.c loader,
per-layer leaf tensors, LoRA A drawn as cutkit draws it, B zero), so with the same --seed both
sides start from the same parameters and see the same tokens: loss_first should agree with
cutkit-bench-cut's to ~1e-5. The batch (per example: the Align-N prompt, BOS first, the
Misalign prompt, the response) is drawn with splitmix64 exactly as bench_cut.c draws it.

Prints one JSON line; tokens/s = real (unpadded) tokens B (PA + PM + 2R) / median step time;
cpu_tokens_per_s the same over the median process CPU time of a step (with --threads 1, robust to
other load).
Run with /usr/bin/python3.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ref  # noqa: E402
import torch_train_ref as ttr  # noqa: E402


class CutModel(ttr.TrainModel):
    def hidden(self, tokens):
        """Final normed hidden states (B, T, dim) of tokens (B, T): TrainModel.loss's body
        without the classifier."""
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
            att = torch.softmax(att * self.scale + mask, dim=-1).view(B, KV, G * T, T)
            o = torch.matmul(att, v).view(B, H, T, hs).transpose(1, 2).reshape(B, T, c.dim)
            x = x + self.linear(o, l, "wo")
            h = torch_ref.rmsnorm(x, p["rms_ffn"])
            x = x + self.linear(F.silu(self.linear(h, l, "w1")) * self.linear(h, l, "w3"), l, "w2")
        return torch_ref.rmsnorm(x, self.rms_final)


def make_batch(a, vocab):
    """Per example: Align-N prompt (BOS + PA - 1 ids), Misalign prompt (BOS + PM - 1), response
    (R): the splitmix64 stream of bench_cut.c. Returns the padded [2B, L] ids, the response
    positions (row, column predicting the label) and the labels, A rows first."""
    per = (a.prompt_a - 1) + (a.prompt_m - 1) + a.response
    ids = ttr.splitmix64_tokens(a.seed, a.examples * per, vocab)
    la, lm = a.prompt_a + a.response, a.prompt_m + a.response
    L = (max(la, lm) + 7) // 8 * 8
    tokens = torch.zeros(2 * a.examples, L, dtype=torch.int64)  # pad id 0, as the reference
    rows_a, rows_m = [], []
    for e in range(a.examples):
        s = ids[e * per:(e + 1) * per]
        pa = [1] + s[:a.prompt_a - 1]
        pm = [1] + s[a.prompt_a - 1:a.prompt_a - 1 + a.prompt_m - 1]
        resp = s[a.prompt_a - 1 + a.prompt_m - 1:]
        tokens[e, :la] = torch.tensor(pa + resp)
        tokens[a.examples + e, :lm] = torch.tensor(pm + resp)
        rows_a.append(e)
        rows_m.append(a.examples + e)
    R = a.response
    # position t predicts t + 1: the response labels sit at columns P .. P + R - 1
    cols_a = torch.arange(a.prompt_a - 1, a.prompt_a - 1 + R)
    cols_m = torch.arange(a.prompt_m - 1, a.prompt_m - 1 + R)
    labels = tokens[:a.examples, a.prompt_a:a.prompt_a + R]  # same ids in M
    return tokens, cols_a, cols_m, labels, la + lm


def step_loss(model, a, tokens, cols_a, cols_m, labels):
    B = a.examples
    h = model.hidden(tokens)
    h_resp = torch.cat([h[:B, cols_a], h[B:, cols_m]], dim=0)  # (2B, R, dim)
    logp = F.log_softmax(F.linear(h_resp, model.wcls), dim=-1)
    lab = torch.cat([labels, labels], dim=0).unsqueeze(-1)
    lp = logp.gather(-1, lab).squeeze(-1)  # (2B, R)
    if a.objective == "mle":
        return -lp.mean(), 0
    lpa, lpm = lp[:B], lp[B:]
    pa, pm = lpa.exp(), lpm.exp()
    u = (pa / pm).detach() > a.lam
    q = torch.where(u, 1.0 - pm, pm)
    q = q + (q == 0).float() * 1e-5
    ll = torch.where(u, a.alpha * torch.log(q), torch.log(q))
    loss_a = -lpa.mean()
    loss_m = -ll.mean()
    return (loss_a + loss_m) / 2, int(u.sum())


def parse_args(argv):
    p = argparse.ArgumentParser(description="PyTorch reference of a CUT training step.")
    p.add_argument("--model", required=True)
    p.add_argument("--objective", choices=("cut", "mle"), default="cut")
    p.add_argument("--examples", type=int, default=2)
    p.add_argument("--prompt-a", type=int, default=96)
    p.add_argument("--prompt-m", type=int, default=96)
    p.add_argument("--response", type=int, default=160)
    p.add_argument("--threads", type=int)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--lambda", dest="lam", type=float, default=1.1)
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--lora", action="store_true")
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--lora-alpha", type=float, default=32.0)
    p.add_argument("--lora-targets", default="gate_proj,up_proj,down_proj")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=1234)
    a = p.parse_args(argv)
    if min(a.examples, a.prompt_a, a.prompt_m, a.response, a.steps) <= 0 or a.warmup < 0:
        p.error("sizes and --steps must be positive, --warmup >= 0")
    a.targets = [t.strip() for t in a.lora_targets.split(",") if t.strip()] if a.lora else []
    if any(t not in ttr.MODULES for t in a.targets):
        p.error(f"--lora-targets: unknown module in {a.lora_targets!r}")
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
    if max(a.prompt_a, a.prompt_m) + a.response > cfg.seq_len:
        raise SystemExit("torch_cut_ref: the sequences exceed the model's seq_len")
    model = CutModel(cfg, w, a.targets, a.lora_r, a.lora_alpha, a.seed)
    del w
    params = model.parameters()
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01)
    tokens, cols_a, cols_m, labels, n_tokens = make_batch(a, cfg.vocab)
    n_tokens *= a.examples
    times, phases, losses, flagged, norms = [], {"fwd": [], "bwd": [], "clip": [], "adamw": []}, [], [], []
    cpu_times = []
    for step in range(a.warmup + a.steps):
        c0 = time.process_time()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss, n_flag = step_loss(model, a, tokens, cols_a, cols_m, labels)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        norm = torch.nn.utils.clip_grad_norm_(params, a.max_grad_norm)
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        losses.append(float(loss))
        flagged.append(n_flag)
        norms.append(float(norm))
        print(f"torch_cut_ref: step {step + 1}{' (warm-up)' if step < a.warmup else ''}: loss "
              f"{losses[-1]:.6f}, grad norm {norms[-1]:.6f}, {n_flag} flagged, {t4 - t0:.3f} s",
              file=sys.stderr)
        if step >= a.warmup:
            times.append(t4 - t0)
            cpu_times.append(time.process_time() - c0)
            for k, v in (("fwd", t1 - t0), ("bwd", t2 - t1), ("clip", t3 - t2), ("adamw", t4 - t3)):
                phases[k].append(v)
    med = statistics.median(times)
    blas = torch_ref.blas_report()
    res = {"impl": "torch", "objective": a.objective, "lora": int(a.lora),
           "threads": torch.get_num_threads(), "examples": a.examples,
           "len_a": a.prompt_a + a.response, "len_m": a.prompt_m + a.response,
           "response": a.response, "tokens": n_tokens, "padded_to": tokens.shape[1],
           "tokens_per_s": round(n_tokens / med, 1), "median_step_s": med,
           "cpu_tokens_per_s": round(n_tokens / statistics.median(cpu_times), 1),
           "median_cpu_s": statistics.median(cpu_times)}
    res.update({f"median_{k}_s": statistics.median(v) for k, v in phases.items()})
    res.update({"loss_first": losses[0], "loss_last": losses[-1], "grad_norm_first": norms[0],
                "flagged_first": flagged[0] if a.objective == "cut" else -1, "lambda": a.lam,
                "alpha": a.alpha,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
                "trained_params": sum(p.numel() for p in params), "steps": a.steps,
                "warmup": a.warmup, "model": os.path.basename(a.model), "torch": torch.__version__,
                "python": platform.python_version(), "blas": blas["name"], "blas_detail": blas,
                "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                   "OPENBLAS_CORETYPE", "LD_LIBRARY_PATH")
                        if k in os.environ}})
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
