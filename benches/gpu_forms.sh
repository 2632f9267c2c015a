#!/bin/bash
# The second GPU call, on the machine `../shared/device/gpu-bench.sh` left warm with its model
# written: the prompt matmul in each tile form and decode through both recorders, all on the
# same file and GPU, then the matmul kernels' rates (`cargo bench --bench kernels -- matmul`:
# the dense and expert matmuls in each form, GFLOP/s) to set beside the GPU's peak.
#
# Prepared with the rest of .dev/ by benches/gpu_prepare.sh.
# Check it on lavapipe: PRESET=bench-qwen35moe PP=64 NG=8 KERNELS=0 bash .dev/gpu_forms.sh
# Then: device run, carry [".dev"], command "bash .dev/gpu_forms.sh", timeout_s 500.
# Environment: PRESET, TYPE, MODEL as gpu-bench.sh; PP (512), NG (64), FORMS ("f16 i8": the
# adapter's own form and direct recording are gpu-bench.sh's run; add "default" to rerun
# them here), RECORDINGS ("wgpu"; add "direct"), KERNELS=0 skips the kernels bench. Device
# time is 15 minutes a session: the defaults keep this call near 5.
set -u
D=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/gpu-bench-out}; mkdir -p "$OUT"
BIN=${BIN:-$D/qwen-wgpu}
PRESET=${PRESET:-qwen3.5-35b-a3b}; TYPE=${TYPE:-q4_K_M}; PP=${PP:-512}; NG=${NG:-64}
MODEL=${MODEL:-/tmp/$PRESET-$TYPE.gguf}
FORMS=${FORMS:-f16 i8}
RECORDINGS=${RECORDINGS:-wgpu}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
log() { echo "== $*" | tee -a "$OUT/forms.txt"; }

if [ ! -f "$MODEL" ]; then
  timeout 300 "$BIN" synth --preset "$PRESET" --type "$TYPE" -o "$MODEL" > "$OUT/synth.log" 2>&1 \
    || { log "synth failed or too slow (300 s): $(tail -1 "$OUT/synth.log")"; exit 1; }
fi

# One line from a bench --json report: what ran, and the figures asked for.
report() {
  python3 - "$1" "$2" <<'PY' | tee -a "$OUT/forms.txt"
import json, sys
d = json.load(open(sys.argv[1]))
form = d["adapter"].split("matmul ")[-1].split(",")[0]
pp, tg = d["prefill_tok_s"]["mean"], d["decode_tok_s"]["mean"]
host, replayed = d.get("host_us_per_token") or 0, d.get("replayed_step_percent") or 0
print(f"{sys.argv[2]:<16} matmul {form:<14} pp{d['n_prompt']} {pp:8.1f} tok/s  "
      f"tg{d['n_gen']} {tg:7.1f} tok/s  host {host:.0f} us/token  replayed {replayed:.0f}%")
PY
}

for form in $FORMS; do
  json="$OUT/form-$form.json"
  if [ "$form" = default ]; then
    timeout 150 "$BIN" bench -m "$MODEL" -p "$PP" -n 8 -r 2 --json > "$json" 2> "$OUT/form-$form.err"
  else
    QWEN_WGPU_MATMUL=$form timeout 150 "$BIN" bench -m "$MODEL" -p "$PP" -n 8 -r 2 --json > "$json" 2> "$OUT/form-$form.err"
  fi || { log "bench with matmul $form failed: $(tail -1 "$OUT/form-$form.err")"; continue; }
  report "$json" "matmul=$form"
done

for recording in $RECORDINGS; do
  json="$OUT/recording-$recording.json"
  QWEN_WGPU_RECORDING=$recording timeout 120 "$BIN" bench -m "$MODEL" -p 0 -n "$NG" -r 2 --json \
    > "$json" 2> "$OUT/recording-$recording.err" \
    || { log "decode with $recording recording failed: $(tail -1 "$OUT/recording-$recording.err")"; continue; }
  grep -i "direct recording" "$OUT/recording-$recording.err" | head -3 | tee -a "$OUT/forms.txt"
  report "$json" "recording=$recording"
done

if [ "${KERNELS:-1}" != 0 ] && [ -x "$D/kernels" ]; then
  timeout 200 "$D/kernels" matmul > "$OUT/kernels-matmul.txt" 2>&1 || log "kernels bench failed or too slow (200 s)"
  grep -E "adapter|matmul|GFLOP" "$OUT/kernels-matmul.txt" | tee -a "$OUT/forms.txt"
fi
