#!/usr/bin/python3
"""PyTorch reference of data-parallel training, for bench/run_mpi.sh.

The step of bench/torch_train_ref.py (same model class, same splitmix64 batch of B sequences of
T ids, mean cross-entropy, clip_grad_norm_, AdamW), run by --procs K processes over
torch.distributed's gloo backend (the CPU backend): rank r takes rows r, r + K, ... of the
global batch, and after backward the gradients of all trainable tensors, flattened into one
contiguous buffer, are summed with one all_reduce and divided by K, as DistributedDataParallel
averages them (the rows are equally long, so that is the global token mean). Each process uses
--threads threads.

Prints one JSON line (rank 0): tokens_per_s = B*T / median step time, median_allreduce_s = the
median time of the all_reduce (waiting for the slower rank included), as bench_mpi.c reports.
Run with /usr/bin/python3.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ref  # noqa: E402
import torch_train_ref  # noqa: E402


def worker(rank, a, port):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(a.threads)
    dist.init_process_group("gloo", rank=rank, world_size=a.procs)
    K = a.procs
    cfg, w = torch_ref.load_checkpoint(a.model)
    targets = ["gate_proj", "up_proj", "down_proj"] if a.lora else []
    model = torch_train_ref.TrainModel(cfg, w, targets, 16, 32.0, a.seed)
    del w
    params = model.parameters()
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)
    ids = torch_train_ref.splitmix64_tokens(a.seed, a.batch * a.seq, cfg.vocab)
    tokens = torch.tensor(ids, dtype=torch.int64).view(a.batch, a.seq)[rank::K]
    times, sums, losses = [], [], []
    for step in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model.loss(tokens)
        loss.backward()
        flat = torch.cat([p.grad.reshape(-1) for p in params]) if K > 1 else None
        t1 = time.perf_counter()
        if K > 1:
            dist.all_reduce(flat)
            flat /= K
            off = 0
            for p in params:
                n = p.numel()
                p.grad.copy_(flat[off:off + n].view_as(p.grad))
                off += n
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        t3 = time.perf_counter()
        losses.append(float(loss))
        if step >= a.warmup:
            times.append(t3 - t0)
            sums.append(t2 - t1)
    if rank == 0:
        med = statistics.median(times)
        print(json.dumps({"impl": "torch", "ranks": K, "threads": a.threads, "batch": a.batch,
                          "seq": a.seq, "lora": int(a.lora),
                          "tokens_per_s": round(a.batch * a.seq / med, 1),
                          "median_step_s": med, "median_allreduce_s": statistics.median(sums),
                          "trained_params": sum(p.numel() for p in params),
                          "torch": torch.__version__}), flush=True)
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser(description="PyTorch data-parallel training step (gloo).")
    p.add_argument("--model", required=True)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--lora", action="store_true")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--port", type=int, default=29517)
    a = p.parse_args()
    if a.procs <= 0 or a.batch % a.procs:
        p.error("--procs must divide --batch")
    mp.spawn(worker, args=(a, a.port), nprocs=a.procs, join=True)


if __name__ == "__main__":
    main()
