#!/bin/bash
# Prepares .dev/ for the GPU check (../shared/device/README.md), from the project's root: the
# release binary, the test suite and the kernels bench, stripped, beside gpu-bench.sh and
# benches/gpu_forms.sh. Then:
#   device run, carry [".dev"], "QWEN_WGPU_BIN=$PWD/.dev/qwen-wgpu bash .dev/gpu-bench.sh"
#     (timeout_s 540; the variable lets the suite's CLI tests run the carried binary)
#   device run, carry [".dev"], "bash .dev/gpu_forms.sh" (timeout_s 400, the machine warm)
#   give_back
# Try it on lavapipe first:
#   GGML_VK_VISIBLE_DEVICES=0 PRESET=bench-qwen35moe PP=128 NG=32 REPS=1 bash .dev/gpu-bench.sh
#   PRESET=bench-qwen35moe PP=64 NG=8 KERNELS=0 bash .dev/gpu_forms.sh
set -eu
cd "$(git rev-parse --show-toplevel)"
cargo build --release
cargo test --release --no-run
cargo bench --bench kernels --no-run
mkdir -p .dev
cp ../shared/device/* .dev/
cp benches/gpu_forms.sh .dev/
exclude="$(git rev-parse --git-path info/exclude)"
mkdir -p "$(dirname "$exclude")"
grep -qx '/.dev/' "$exclude" 2>/dev/null || echo /.dev/ >> "$exclude"
newest() { ls -t target/release/deps/"$1"-* | grep -v '\.d$' | head -1; }
strip -o .dev/qwen-wgpu target/release/qwen-wgpu
strip -o .dev/suite "$(newest suite)"
strip -o .dev/kernels "$(newest kernels)"
du -sh .dev
