#!/usr/bin/env python3
"""make_quant_fixtures.py: writes tests/fixtures/quant/quant_types.gguf (one small tensor per
GGML type that weights/quant.c reads) and <TYPE>.npy float32 references from the PyPI `gguf`
package's numpy dequantize, an implementation independent of ours.

Quantised blocks are random bytes (every bit pattern of the packed fields is exercised) with the
f16/f32 scale fields overwritten by finite values of either sign, so that the reference has no
inf/NaN. Q8_K has no numpy dequantize in gguf-py; its reference is d * int8 computed here.

Run:  python3 -m venv .venv-quant && .venv-quant/bin/pip install gguf numpy
      .venv-quant/bin/python tests/ref/make_quant_fixtures.py
Deterministic (fixed seed): rerunning reproduces the committed files byte for byte.
"""
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "quant")
rng = np.random.default_rng(20240601)

# byte offsets of the f16 scale fields inside one block, per type (from the block layouts)
F16_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
# (rows, columns): a few blocks per row so row/block indexing is exercised
SHAPES = {T.F32: (3, 40), T.F16: (3, 40), T.BF16: (3, 40)}
SMALL_BLOCK = (4, 128)   # 16 blocks of 32
K_BLOCK = (3, 512)       # 6 super-blocks of 256


def random_blocks(qtype, shape):
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    nblocks = shape[0] * shape[1] // block
    raw = rng.integers(0, 256, size=(nblocks, size), dtype=np.uint8)
    for off in F16_FIELDS.get(qtype, []):
        # magnitudes 2^-12 .. 2^-2 of either sign, including a few exact zeros
        v = (rng.choice([-1.0, 1.0], nblocks) * 2.0 ** rng.uniform(-12, -2, nblocks)).astype(np.float16)
        v[rng.random(nblocks) < 0.05] = 0
        raw[:, off:off + 2] = v.view(np.uint8).reshape(nblocks, 2)
    if qtype == T.Q8_K:
        d = (rng.choice([-1.0, 1.0], nblocks) * 2.0 ** rng.uniform(-12, -2, nblocks)).astype(np.float32)
        raw[:, 0:4] = d.view(np.uint8).reshape(nblocks, 4)
    return raw.reshape(shape[0], -1)


def reference(qtype, raw):
    if qtype == T.Q8_K:
        blocks = raw.reshape(-1, 292)
        d = blocks[:, 0:4].copy().view(np.float32)
        q = blocks[:, 4:260].view(np.int8).astype(np.float32)
        return (d * q).astype(np.float32).reshape(raw.shape[0], -1)
    return gguf.quants.dequantize(raw, qtype).astype(np.float32)


def main():
    os.makedirs(OUT, exist_ok=True)
    w = gguf.GGUFWriter(os.path.join(OUT, "quant_types.gguf"), arch="llama")
    w.add_string("test.purpose", "dequantisation parity fixtures for weights/quant.c")
    refs = {}
    for qtype in [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0,
                  T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K, T.Q8_K]:
        name = qtype.name
        if qtype in SHAPES:
            x = rng.standard_normal(SHAPES[qtype]).astype(np.float32)
            x[0, :4] = [0.0, -0.0, 1e-6, -65504.0]  # zero, signed zero, f16 subnormal, f16 max
            if qtype == T.F32:
                w.add_tensor(name, x)
                ref = x
            elif qtype == T.F16:
                h = x.astype(np.float16)
                w.add_tensor(name, h)
                ref = h.astype(np.float32)
            else:
                raw = gguf.quants.quantize(x, T.BF16)
                w.add_tensor(name, raw, raw_dtype=T.BF16)  # uint8 bytes: the writer derives the shape
                ref = reference(T.BF16, raw)
        else:
            shape = K_BLOCK if gguf.GGML_QUANT_SIZES[qtype][0] == 256 else SMALL_BLOCK
            raw = random_blocks(qtype, shape)
            w.add_tensor(name, raw, raw_dtype=qtype)
            ref = reference(qtype, raw)
        assert np.isfinite(ref).all(), name
        refs[name] = ref
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    for name, ref in refs.items():
        np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(ref, dtype="<f4"))
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(refs)} tensors to {OUT} ({total} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
