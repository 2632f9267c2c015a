#!/usr/bin/env python3
"""Logit goldens from llama.cpp, the engine users trust, for the tiny synthetic models.

Needs llama-cpp-python 0.3.36 (`pip install llama-cpp-python==0.3.36`, which builds the
llama.cpp it vendors: ggml 0.25.3, CPU backend) and a built `qwen-wgpu`.
For each tiny preset it writes the synthetic model with `qwen-wgpu synth` (seeded, so the
same bytes every time), evaluates the prompt below with every position's logits kept, and
writes tests/data/llamacpp/<preset>.f32 (little-endian f32, [tokens, vocab]) and
<preset>.json (prompt, file hash, llama.cpp version).
Run from the repository root: python3 tools/llamacpp_goldens.py [path/to/qwen-wgpu]
"""
import json
import os
import subprocess
import sys
import tempfile

import llama_cpp
import numpy as np

PRESETS = ["tiny-qwen35moe", "tiny-qwen35", "tiny-qwen3moe"]
# Byte tokens, merges and specials of the 263-token vocabulary; 21 positions.
PROMPT = [261, 72, 101, 108, 108, 111, 44, 256, 119, 111, 114, 108, 100, 33, 262, 10, 258, 1, 200, 255, 259]
OUT = os.path.join("tests", "data", "llamacpp")


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def main():
    exe = sys.argv[1] if len(sys.argv) > 1 else os.path.join("target", "release", "qwen-wgpu")
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for preset in PRESETS:
            path = os.path.join(tmp, preset + ".gguf")
            subprocess.run([exe, "synth", "--preset", preset, "-o", path], check=True)
            with open(path, "rb") as f:
                digest = fnv1a64(f.read())
            # f32 KV cache (type 0): llama.cpp's default f16 cache would round K and V.
            llm = llama_cpp.Llama(model_path=path, logits_all=True, n_ctx=64, n_batch=64,
                                  n_threads=2, verbose=False, type_k=0, type_v=0)
            llm.eval(PROMPT)
            logits = np.array(llm.scores[: len(PROMPT)], dtype="<f4")
            assert logits.shape == (len(PROMPT), 263) and np.isfinite(logits).all()
            with open(os.path.join(OUT, preset + ".f32"), "wb") as f:
                f.write(logits.tobytes())
            meta = {"prompt": PROMPT, "fixture_fnv1a64": f"{digest:016x}",
                    "llama_cpp_python": llama_cpp.__version__, "backend": "CPU, f32 weights, f32 KV cache"}
            with open(os.path.join(OUT, preset + ".json"), "w") as f:
                json.dump(meta, f, indent=1)
            del llm


if __name__ == "__main__":
    main()
