#!/usr/bin/python3
"""Write a randomly initialised Llama-architecture checkpoint in the llama2.c "version 1" format.

Layout (all little-endian):
  header, 256 bytes: uint32 magic 0x616b3432, int32 version 1, int32 dim, hidden_dim, n_layers,
  n_heads, n_kv_heads, vocab_size, max_seq_len, uint8 shared_classifier, zero padding;
  then fp32 tensors, row-major [out][in]: rms_att (L, dim), rms_ffn (L, dim), rms_final (dim),
  token_embedding (vocab, dim), wq (L, dim, dim), wk (L, kv_dim, dim), wv (L, kv_dim, dim),
  wo (L, dim, dim), w1 (L, hidden, dim), w2 (L, dim, hidden), w3 (L, hidden, dim),
  and the classifier (vocab, dim) only when it is not shared with the token embedding.

Init: matrices ~ normal(0, 0.02), norm gains = 1, from numpy's default_rng(seed), drawn in file order.
The file is written to a temporary name next to --out and renamed into place.

Usage: make_model.py --preset stories15M --out build-bench/models/stories15M-random.bin
"""
import argparse
import os
import struct
import sys
import tempfile

import numpy as np

MAGIC = 0x616B3432
HEADER_BYTES = 256

PRESETS = {
    "stories15M": dict(dim=288, hidden=768, layers=6, heads=6, kv_heads=6, vocab=32000, seq_len=256),
    "110M": dict(dim=768, hidden=2048, layers=12, heads=12, kv_heads=12, vocab=32000, seq_len=1024),
}

# Write big tensors in pieces of at most this many floats (keeps peak memory small for 110M).
CHUNK = 1 << 22


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), help="a named shape; explicit flags override it")
    p.add_argument("--dim", type=int)
    p.add_argument("--hidden", type=int, help="FFN hidden size")
    p.add_argument("--layers", type=int)
    p.add_argument("--heads", type=int)
    p.add_argument("--kv-heads", type=int, help="default: --heads")
    p.add_argument("--vocab", type=int)
    p.add_argument("--seq-len", type=int)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--shared", dest="shared", action="store_true", default=True,
                   help="classifier = token embedding (default)")
    g.add_argument("--no-shared", dest="shared", action="store_false", help="write a separate classifier")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--out", required=True, help="output path")
    a = p.parse_args(argv)

    cfg = dict(PRESETS[a.preset]) if a.preset else {}
    for key in ("dim", "hidden", "layers", "heads", "kv_heads", "vocab", "seq_len"):
        v = getattr(a, key)
        if v is not None:
            cfg[key] = v
    if "kv_heads" not in cfg and "heads" in cfg:
        cfg["kv_heads"] = cfg["heads"]
    missing = [k for k in ("dim", "hidden", "layers", "heads", "kv_heads", "vocab", "seq_len") if k not in cfg]
    if missing:
        p.error("missing shape arguments (or use --preset): " + ", ".join("--" + m.replace("_", "-") for m in missing))
    for k, v in cfg.items():
        if v <= 0:
            p.error(f"--{k.replace('_', '-')} must be positive")
    if cfg["dim"] % cfg["heads"]:
        p.error("--dim must be a multiple of --heads")
    if (cfg["dim"] // cfg["heads"]) % 2:
        p.error("head size (dim / heads) must be even for RoPE")
    if cfg["heads"] % cfg["kv_heads"]:
        p.error("--heads must be a multiple of --kv-heads")
    return a, cfg


def tensor_list(cfg, shared):
    """(name, shape, kind) in file order; kind is 'ones' or 'normal'."""
    d, h, L, v = cfg["dim"], cfg["hidden"], cfg["layers"], cfg["vocab"]
    kv_dim = d // cfg["heads"] * cfg["kv_heads"]
    out = [
        ("rms_att", (L, d), "ones"),
        ("rms_ffn", (L, d), "ones"),
        ("rms_final", (d,), "ones"),
        ("token_embedding", (v, d), "normal"),
        ("wq", (L, d, d), "normal"),
        ("wk", (L, kv_dim, d), "normal"),
        ("wv", (L, kv_dim, d), "normal"),
        ("wo", (L, d, d), "normal"),
        ("w1", (L, h, d), "normal"),
        ("w2", (L, d, h), "normal"),
        ("w3", (L, h, d), "normal"),
    ]
    if not shared:
        out.append(("wcls", (v, d), "normal"))
    return out


def header_bytes(cfg, shared):
    hdr = struct.pack("<Ii7iB", MAGIC, 1, cfg["dim"], cfg["hidden"], cfg["layers"], cfg["heads"],
                      cfg["kv_heads"], cfg["vocab"], cfg["seq_len"], 1 if shared else 0)
    return hdr + b"\0" * (HEADER_BYTES - len(hdr))


def write_model(path, cfg, shared, seed):
    rng = np.random.default_rng(seed)
    tensors = tensor_list(cfg, shared)
    out_dir = os.path.dirname(os.path.abspath(path))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=out_dir)
    n_floats = 0
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            f.write(header_bytes(cfg, shared))
            for _name, shape, kind in tensors:
                n = int(np.prod(shape))
                n_floats += n
                done = 0
                while done < n:
                    m = min(CHUNK, n - done)
                    if kind == "ones":
                        buf = np.ones(m, dtype="<f4")
                    else:
                        buf = rng.standard_normal(m, dtype=np.float32)
                        buf *= np.float32(0.02)
                        buf = buf.astype("<f4", copy=False)
                    f.write(buf.tobytes())
                    done += m
            f.flush()
            os.fsync(f.fileno())
        expected = HEADER_BYTES + 4 * n_floats
        if os.path.getsize(tmp) != expected:
            raise IOError(f"wrote {os.path.getsize(tmp)} bytes, expected {expected}")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return n_floats


def main(argv=None):
    a, cfg = parse_args(sys.argv[1:] if argv is None else argv)
    n = write_model(a.out, cfg, a.shared, a.seed)
    print(f"make_model: wrote {a.out}: dim {cfg['dim']} hidden {cfg['hidden']} layers {cfg['layers']} "
          f"heads {cfg['heads']} kv_heads {cfg['kv_heads']} vocab {cfg['vocab']} seq_len {cfg['seq_len']} "
          f"shared {int(a.shared)} seed {a.seed}; {n:,} floats, {HEADER_BYTES + 4 * n:,} bytes",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
