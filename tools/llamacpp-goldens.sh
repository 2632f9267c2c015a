#!/usr/bin/env bash
# Regenerates tests/data/llamacpp/ (goldens and quantized fixtures) with llama.cpp.
# Makes a venv with llama-cpp-python 0.3.36, which compiles the llama.cpp it vendors
# (10-20 minutes on 2 cores the first time), builds qwen-wgpu, and runs llamacpp_goldens.py.
# CI does not run this: it uses the committed goldens.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${LLAMACPP_VENV:-target/llamacpp-venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    # A portable AVX2 build: ggml's native build picks up AMX where the CPU has it, and its
    # AMX matmul crashed on Q8_0 here (a VM that does not grant AMX tile state).
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" \
        "$venv/bin/pip" install --quiet --no-cache-dir numpy "llama-cpp-python==0.3.36"
fi
cargo build --release --bin qwen-wgpu
"$venv/bin/python" tools/llamacpp_goldens.py target/release/qwen-wgpu
