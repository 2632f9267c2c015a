#!/usr/bin/env python3
"""Logit goldens from llama.cpp, the engine users trust; run through tools/llamacpp-goldens.sh,
which makes the venv with llama-cpp-python 0.3.36 (ggml 0.25.3, CPU backend).

Fixtures (all with n_v = 2 n_k, so the GGUF's tiled V-head order matters):
  * F32: tiny-* (64 wide) and small-* (256 wide) of qwen35moe, qwen35 and qwen3moe, written by
    `qwen-wgpu synth` (seeded: the test regenerates them and checks their FNV-1a hash);
  * Q8_0 and Q4_K_M of the small-* models, made by llama.cpp's own quantizer and committed
    (tests/data/llamacpp/fixtures/), every quantized row a multiple of 256 so K-quants apply.
For each quantized fixture also `<name>-dequant`: llama.cpp run on its own f32 dequantization of
the fixture (no 8-bit activations), which our reference on the quantized file must match exactly.
For each: the logits of every position of PROMPT and llama.cpp's 32-token greedy continuation,
in tests/data/llamacpp/<name>.f32 ([tokens, vocab] little-endian f32) and <name>.json.
Usage: tools/llamacpp_goldens.py path/to/qwen-wgpu
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import llama_cpp
import numpy as np

ARCHS = ["qwen35moe", "qwen35", "qwen3moe"]
# Byte tokens, merges and specials of the 263-token vocabulary; 21 positions.
PROMPT = [261, 72, 101, 108, 108, 111, 44, 256, 119, 111, 114, 108, 100, 33, 262, 10, 258, 1, 200, 255, 259]
CONTINUATION = 32
OUT = os.path.join("tests", "data", "llamacpp")
FIXTURES = os.path.join(OUT, "fixtures")
QUANTS = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "q4_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M}


def fnv1a64(path):
    h = 0xCBF29CE484222325
    with open(path, "rb") as f:
        for b in f.read():
            h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def quantize(src, dst, ftype):
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = 2
    params.allow_requantize = True
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), params)
    assert rc == 0, f"llama_model_quantize({src}) failed: {rc}"


def goldens(name, path, source, note=None, fixture_path=None):
    # f32 KV cache (type 0): llama.cpp's default f16 cache would round K and V.
    llm = llama_cpp.Llama(model_path=path, logits_all=True, n_ctx=64, n_batch=64, n_threads=2,
                          verbose=False, type_k=0, type_v=0)
    llm.eval(PROMPT)
    logits = np.array(llm.scores[: len(PROMPT)], dtype="<f4")
    assert np.isfinite(logits).all()
    greedy = []
    nxt = int(np.argmax(llm.scores[len(PROMPT) - 1]))
    for _ in range(CONTINUATION):
        greedy.append(nxt)
        llm.eval([nxt])
        nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
    with open(os.path.join(OUT, name + ".f32"), "wb") as f:
        f.write(logits.tobytes())
    meta = {"prompt": PROMPT, "greedy": greedy, "fixture": source, "fixture_fnv1a64": fnv1a64(fixture_path or path),
            "llama_cpp_python": llama_cpp.__version__, "backend": "CPU, f32 KV cache"}
    if note:
        meta["llama_input"] = note
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(meta, f)
    del llm


def main():
    exe = sys.argv[1]
    os.makedirs(FIXTURES, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for size in ["tiny", "small"]:
            for arch in ARCHS:
                name = f"{size}-{arch}"
                path = os.path.join(tmp, name + ".gguf")
                subprocess.run([exe, "synth", "--preset", name, "-o", path], check=True)
                goldens(name + "-f32", path, f"qwen-wgpu synth --preset {name}")
                if size != "small":
                    continue
                for quant, ftype in QUANTS.items():
                    qname = f"{name}-{quant}"
                    qpath = os.path.join(FIXTURES, qname + ".gguf")
                    quantize(path, qpath, ftype)
                    goldens(qname, qpath, f"fixtures/{qname}.gguf")
                    # llama.cpp's own dequantization of the same file to f32: without its
                    # 8-bit activations, llama.cpp must then agree with us at f32 precision.
                    dequant = os.path.join(tmp, qname + "-dequant.gguf")
                    quantize(qpath, dequant, llama_cpp.LLAMA_FTYPE_ALL_F32)
                    goldens(qname + "-dequant", dequant, f"fixtures/{qname}.gguf",
                            note="the fixture dequantized to f32 by llama_model_quantize",
                            fixture_path=qpath)


if __name__ == "__main__":
    main()
