#!/usr/bin/python3
"""Rewrite a llama2.c "version 1" checkpoint (make_model.py) in the legacy "version 0" layout.

llama2.c's run.c reads only version 0, so bench/run.sh gives cutkit, PyTorch and run.c this one
file: the same numbers, reordered. Version 0 (all little-endian): seven int32 (dim, hidden_dim,
n_layers, n_heads, n_kv_heads, vocab_size -- negative when the classifier is separate -- and
max_seq_len), then fp32 token_embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3,
rms_final, two RoPE tables of max_seq_len * head_size / 2 floats (zeros here: every reader
recomputes RoPE), and the classifier when it is separate.

Usage: legacy_model.py IN.bin OUT.bin
"""
import os
import struct
import sys
import tempfile

import numpy as np

HEADER_BYTES = 256


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    src, dst = argv[1], argv[2]
    with open(src, "rb") as f:
        head = f.read(HEADER_BYTES)
        magic, version, dim, hidden, layers, heads, kv_heads, vocab, seq_len = struct.unpack("<Ii7i", head[:36])
        shared = head[36]
        if magic != 0x616B3432 or version != 1:
            print(f"legacy_model: {src}: not a llama2.c version 1 file (magic {magic:#x}, version {version})",
                  file=sys.stderr)
            return 1
        data = np.fromfile(f, dtype="<f4")
    kv_dim = dim // heads * kv_heads
    sizes = [("rms_att", layers * dim), ("rms_ffn", layers * dim), ("rms_final", dim),
             ("tok", vocab * dim), ("wq", layers * dim * dim), ("wk", layers * kv_dim * dim),
             ("wv", layers * kv_dim * dim), ("wo", layers * dim * dim), ("w1", layers * hidden * dim),
             ("w2", layers * dim * hidden), ("w3", layers * hidden * dim)]
    if not shared:
        sizes.append(("wcls", vocab * dim))
    t, off = {}, 0
    for name, n in sizes:
        t[name] = data[off:off + n]
        off += n
    if off != data.size:
        print(f"legacy_model: {src}: {data.size} floats after the header, expected {off}", file=sys.stderr)
        return 1
    rope = np.zeros(seq_len * (dim // heads) // 2, dtype="<f4")
    order = ["tok", "rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3", "rms_final"]
    out_dir = os.path.dirname(os.path.abspath(dst))
    fd, tmp = tempfile.mkstemp(prefix=".legacy.", suffix=".tmp", dir=out_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<7i", dim, hidden, layers, heads, kv_heads, vocab if shared else -vocab, seq_len))
            for name in order:
                f.write(t[name].tobytes())
            f.write(rope.tobytes())
            f.write(rope.tobytes())
            if not shared:
                f.write(t["wcls"].tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
    except BaseException:
        os.unlink(tmp)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
