#!/usr/bin/env python3
"""Dequantization goldens from an independent implementation: the `gguf` package's
`gguf.quants` (pip install gguf==0.19.0 numpy).

For every ggml type qwen-wgpu dequantizes, writes seeded random blocks and what gguf.quants
makes of them:
  tests/data/quant/<type>.blocks   raw blocks, as they would sit in a GGUF file
  tests/data/quant/<type>.f32      the dequantized values, little-endian f32
and, for the types gguf.quants can quantize, its quantization of seeded random floats:
  tests/data/quant/<type>.input.f32 / <type>.quantized
Random bytes fill every field except the float scales, which are drawn as finite values of a
sane magnitude (random bytes there would give NaN and infinities that test nothing).
Run from the repository root: python3 tools/quant_goldens.py
"""
import os
import struct

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize, quantize

OUT = os.path.join("tests", "data", "quant")
BLOCKS = 6

# (type, offsets of f16 scales within a block, offset of an f32 scale, offset of an E8M0 byte)
TYPES = [
    (T.Q4_0, [0], None, None),
    (T.Q4_1, [0, 2], None, None),
    (T.Q5_0, [0], None, None),
    (T.Q5_1, [0, 2], None, None),
    (T.Q8_0, [0], None, None),
    (T.Q2_K, [80, 82], None, None),
    (T.Q3_K, [108], None, None),
    (T.Q4_K, [0, 2], None, None),
    (T.Q5_K, [0, 2], None, None),
    (T.Q6_K, [208], None, None),
    (T.IQ4_NL, [0], None, None),
    (T.IQ4_XS, [0], None, None),
    (T.MXFP4, [], None, 0),
]
QUANTIZABLE = [T.Q4_0, T.Q8_0]


def random_blocks(rng, qtype, f16_at, e8m0_at):
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    raw = bytearray(rng.integers(0, 256, size=BLOCKS * type_size, dtype=np.uint8).tobytes())
    for b in range(BLOCKS):
        base = b * type_size
        for off in f16_at:
            scale = np.float16(rng.uniform(-2.0, 2.0) * 10.0 ** rng.integers(-3, 1))
            raw[base + off:base + off + 2] = scale.tobytes()
        if e8m0_at is not None:
            raw[base + e8m0_at] = int(rng.integers(100, 150))
    return bytes(raw), block_size


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20261124)
    for qtype, f16_at, _, e8m0_at in TYPES:
        raw, block_size = random_blocks(rng, qtype, f16_at, e8m0_at)
        values = dequantize(np.frombuffer(raw, dtype=np.uint8), qtype).astype("<f4").ravel()
        assert values.size == BLOCKS * block_size and np.isfinite(values).all()
        name = qtype.name.lower()
        with open(os.path.join(OUT, f"{name}.blocks"), "wb") as f:
            f.write(raw)
        with open(os.path.join(OUT, f"{name}.f32"), "wb") as f:
            f.write(values.tobytes())
    # Q8_K has no dequantizer in gguf.quants: y = d * q with an f32 d, done here in numpy.
    raw, values = bytearray(), []
    for _ in range(BLOCKS):
        d = np.float32(rng.uniform(-0.01, 0.01))
        q = rng.integers(-128, 128, size=256).astype(np.int8)
        raw += struct.pack("<f", float(d)) + q.tobytes()
        raw += rng.integers(0, 256, size=32, dtype=np.uint8).tobytes()
        values.append(d * q.astype(np.float32))
    with open(os.path.join(OUT, "q8_k.blocks"), "wb") as f:
        f.write(bytes(raw))
    with open(os.path.join(OUT, "q8_k.f32"), "wb") as f:
        f.write(np.concatenate(values).astype("<f4").tobytes())
    for qtype in QUANTIZABLE:
        block_size, _ = GGML_QUANT_SIZES[qtype]
        x = rng.standard_normal((3, 2 * block_size)).astype(np.float32)
        q = quantize(x, qtype)
        name = qtype.name.lower()
        with open(os.path.join(OUT, f"{name}.input.f32"), "wb") as f:
            f.write(x.astype("<f4").tobytes())
        with open(os.path.join(OUT, f"{name}.quantized"), "wb") as f:
            f.write(q.tobytes())


if __name__ == "__main__":
    main()
