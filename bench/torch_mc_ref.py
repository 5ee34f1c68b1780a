#!/usr/bin/python3
"""PyTorch side of bench/run_mc.sh: scores the multiple-choice requests that cutkit-bench-mc
dumped, as lm-evaluation-harness's HFLM does, each context+choice through the whole model
(full logits, log_softmax, gather, sum), either one request per forward (--mode separate) or the
choices of a question padded into one batch (--mode batched, right padding, per-row lengths).

    torch_mc_ref.py --model M.bin --requests questions.json [--mode separate|batched]
                    [--threads N] [--repeats 3] [--lls out.json] [--autocast none|bf16]

Prints one JSON line: questions/s and request tokens/s (context + continuation of every
request), the best of --repeats timed passes after one warm-up pass, by wall time and by process
CPU time (the steadier number for 1 thread on a shared machine). --autocast bf16 scores under
torch.autocast("cpu", dtype=torch.bfloat16) (bench/torch_ref.py); the line records "autocast"."""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# the benchmarks' torch model
from torch_ref import Llama, autocast_context, blas_report, load_checkpoint  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--requests", required=True)
    p.add_argument("--mode", choices=("separate", "batched"), default="separate")
    p.add_argument("--threads", type=int)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--lls")
    p.add_argument("--autocast", choices=("none", "bf16"), default="none")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg, w = load_checkpoint(a.model)
    model = Llama(cfg, w)
    spec = json.load(open(a.requests))
    k = spec["choices"]
    reqs = spec["requests"]
    questions = [reqs[i:i + k] for i in range(0, len(reqs), k)]
    req_tokens = sum(len(t) for _, t in reqs)
    lls = [0.0] * len(reqs)

    def score_separate():
        i = 0
        for q in questions:
            for n_ctx, toks in q:
                inp = torch.tensor(toks[:-1])[None]
                logp = torch.log_softmax(model.logits(inp), dim=-1)[0]
                cont = torch.tensor(toks[n_ctx:])
                rows = logp[n_ctx - 1:]
                lls[i] = float(rows.gather(1, cont[:, None]).sum())
                i += 1

    def score_batched():
        i = 0
        for q in questions:
            T = max(len(t) - 1 for _, t in q)
            inp = torch.zeros((len(q), T), dtype=torch.int64)
            for r, (_, toks) in enumerate(q):
                inp[r, :len(toks) - 1] = torch.tensor(toks[:-1])
            logp = torch.log_softmax(model.logits(inp), dim=-1)
            for r, (n_ctx, toks) in enumerate(q):
                cont = torch.tensor(toks[n_ctx:])
                rows = logp[r, n_ctx - 1:len(toks) - 1]
                lls[i] = float(rows.gather(1, cont[:, None]).sum())
                i += 1

    fn = score_separate if a.mode == "separate" else score_batched
    best = best_cpu = float("inf")
    with torch.inference_mode(), autocast_context(a.autocast):
        for rep in range(a.repeats + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if rep > 0:
                best = min(best, dt)
                best_cpu = min(best_cpu, dc)
    if a.lls:
        json.dump(lls, open(a.lls, "w"))
    print(json.dumps(dict(mode=a.mode, threads=torch.get_num_threads(), seconds=round(best, 4),
                          questions_per_s=round(len(questions) / best, 2),
                          tokens_per_s=round(req_tokens / best), cpu_seconds=round(best_cpu, 4),
                          questions_per_cpu_s=round(len(questions) / best_cpu, 2),
                          autocast=a.autocast, impl="torch", torch=torch.__version__,
                          blas=blas_report()["name"])))


if __name__ == "__main__":
    main()
