#!/bin/bash
# Experts beyond VRAM on the device machine, in one call: `qwen-wgpu bench --gpu-memory` at each
# budget beside llama.cpp's Vulkan llama-bench with the experts of N layers kept in host memory
# (`-ncmoe N`, N chosen so that its VRAM holds the same share of the experts), same file, same GPU.
#
# Prepare as for ../shared/device/gpu-bench.sh (.dev holding qwen-wgpu, the llama.cpp build and
# this script), then: device run, carry [".dev"], command "bash .dev/experts_beyond_vram.sh",
# timeout_s 540. Environment: PRESET (qwen3.5-35b-a3b), TYPE (q4_K_M), SKEW (router skew of the
# synthetic routers, 0.5), BUDGETS ("12GiB 16GiB"), PP (512), NG (128), REPS (2), MODEL (an
# existing file instead of synth), SKIP_PEER=1.
set -u
D=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/experts-out}; mkdir -p "$OUT"
BIN=${BIN:-$D/qwen-wgpu}
PRESET=${PRESET:-qwen3.5-35b-a3b}; TYPE=${TYPE:-q4_K_M}; SKEW=${SKEW:-0.5}
BUDGETS=${BUDGETS:-12GiB 16GiB}; PP=${PP:-512}; NG=${NG:-128}; REPS=${REPS:-2}
MODEL=${MODEL:-/tmp/$PRESET-$TYPE-skew$SKEW.gguf}
log() { echo "== $*" | tee -a "$OUT/summary.txt"; }

if ! ldconfig -p | grep -q 'libvulkan.so.1'; then for f in "$D"/libvulkan1_*.deb; do [ -f "$f" ] && dpkg -x "$f" /; done; ldconfig; fi
for j in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do [ -f "$j" ] && FOUND_ICD=1; done
[ -n "${FOUND_ICD:-}" ] || [ ! -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}

if [ ! -f "$MODEL" ]; then
  timeout 300 "$BIN" synth --preset "$PRESET" --type "$TYPE" --router-skew "$SKEW" -o "$MODEL" > "$OUT/synth.log" 2>&1 \
    || { log "synth failed or too slow (300 s): $(tail -1 "$OUT/synth.log")"; exit 1; }
fi
LAYERS=$("$BIN" inspect "$MODEL" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["config"]["layers"]))')

for B in $BUDGETS; do
  timeout 200 "$BIN" bench -m "$MODEL" -p "$PP" -n "$NG" -r "$REPS" --gpu-memory "$B" --json > "$OUT/ours-$B.json" 2> "$OUT/ours-$B.err" \
    || log "qwen-wgpu bench --gpu-memory $B failed: $(tail -1 "$OUT/ours-$B.err")"
  # llama.cpp keeps every expert of its first N layers in host memory: the same share as ours.
  N=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(round(int(sys.argv[2]) * r["experts_host"] / (r["experts_host"] + r["experts_resident"])))' "$OUT/ours-$B.json" "$LAYERS" 2>/dev/null || echo "")
  if [ -z "${SKIP_PEER:-}" ] && [ -n "$N" ]; then
    mkdir -p /tmp/lvk && [ -d /tmp/lvk/llama-vk ] || tar -C /tmp/lvk -xJf "$D"/llama-vk-*.tar.xz
    LD_LIBRARY_PATH=/tmp/lvk/llama-vk timeout 200 /tmp/lvk/llama-vk/llama-bench -m "$MODEL" -p "$PP" -n "$NG" -r "$REPS" -ngl 99 -ncmoe "$N" -o json \
      > "$OUT/llama-vk-$B.json" 2> "$OUT/llama-vk-$B.err" || log "llama-bench -ncmoe $N failed: $(tail -2 "$OUT/llama-vk-$B.err" | tr '\n' ' ')"
  fi
  python3 - "$OUT" "$B" "${N:-?}" <<'PY' | tee -a "$OUT/summary.txt"
import json, os, sys
o, b, n = sys.argv[1:4]
def load(name):
    try: return json.load(open(os.path.join(o, name)))
    except Exception: return None
ours, peer = load(f"ours-{b}.json"), load(f"llama-vk-{b}.json")
if ours:
    hit = ours.get("expert_hit_rate")
    print(f"{b}: qwen-wgpu experts {ours['experts_resident']} in VRAM, {ours['experts_host']} in host memory; "
          f"pp{ours['n_prompt']} {ours['prefill_tok_s']['mean']:.1f} tok/s, tg{ours['n_gen']} {ours['decode_tok_s']['mean']:.1f} tok/s, "
          f"hit rate {100 * hit if hit is not None else float('nan'):.1f}%, "
          f"{(ours.get('expert_host_bytes_per_token') or 0) / 2**20:.1f} MiB/token from host memory")
if peer:
    pp = [r["avg_ts"] for r in peer if r["n_prompt"] > 0 and r["n_gen"] == 0]
    tg = [r["avg_ts"] for r in peer if r["n_gen"] > 0 and r["n_prompt"] == 0]
    print(f"{b}: llama.cpp Vulkan -ncmoe {n}: pp {pp[0] if pp else float('nan'):.1f} tok/s, tg {tg[0] if tg else float('nan'):.1f} tok/s")
PY
done
