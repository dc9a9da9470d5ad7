#!/usr/bin/env bash
# Hardware benchmark of the compiler issue: compile time of a 784-1024-1024-1024-10 model, and
# the cycle-accurate simulator against Verilator on a Fashion-MNIST 784-256-256-10 design over
# 10,000 test frames (same frames, same stimulus, same run), with every cycle compared, and the
# same model at 8 pixels per beat (98 cycles per frame) over 1,000 frames, and with every layer's
# weights in RAM loaded through the load port (as for SPRAM) over 1,000 frames.
#   scripts/bench-hw.sh [FRAMES]     (default 10000; a few minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
cargo build --release --quiet
FC=target/release/flipchip
FMNIST=/usr/share/datasets/fashion-mnist
OUT=build/bench-hw
FRAMES=${1:-10000}
mkdir -p "$OUT"

echo "== training models (1 epoch each: the weights' values do not change the hardware's cost)"
[ -f "$OUT/big.fcm" ] || "$FC" train --data "$FMNIST" --arch 784-1024-1024-1024-10 --epochs 1 \
  --out "$OUT/big.fcm" --quiet
[ -f "$OUT/fmnist.fcm" ] || "$FC" train --data "$FMNIST" --arch 784-256-256-10 --epochs 1 \
  --out "$OUT/fmnist.fcm" --quiet

echo "== compile 784-1024-1024-1024-10"
start=$(date +%s.%N)
"$FC" compile "$OUT/big.fcm" --out "$OUT/big" --json 2>/dev/null | tail -1 > "$OUT/big-compile.json"
end=$(date +%s.%N)

echo "== compile 784-256-256-10 and verify $FRAMES frames: reference, simulator, Verilator"
"$FC" compile "$OUT/fmnist.fcm" --out "$OUT/fmnist" >/dev/null
"$FC" verify --build "$OUT/fmnist" --data "$FMNIST" --frames "$FRAMES" --rtl verilator \
  --bubbles 10 --stalls 10 --json | tail -1 > "$OUT/verify.json"

echo "== the same at 8 pixels per beat (--target-cycles 98), 1000 frames"
"$FC" compile "$OUT/fmnist.fcm" --out "$OUT/fmnist98" --target-cycles 98 >/dev/null
"$FC" verify --build "$OUT/fmnist98" --data "$FMNIST" --frames 1000 --rtl verilator \
  --bubbles 10 --stalls 10 --json | tail -1 > "$OUT/verify98.json"

echo "== the same with every layer's weights loaded into RAM after reset, 1000 frames"
cat > "$OUT/fold-loaded.json" <<'JSON'
{"layers":[{"pe":64,"simd":16},{"pe":1,"simd":128},{"pe":1,"simd":4}],"load_weights":[1,2,3]}
JSON
"$FC" compile "$OUT/fmnist.fcm" --out "$OUT/fmnist-loaded" --fold "$OUT/fold-loaded.json" >/dev/null
"$FC" verify --build "$OUT/fmnist-loaded" --data "$FMNIST" --frames 1000 --rtl verilator \
  --bubbles 10 --stalls 10 --json | tail -1 > "$OUT/verify-loaded.json"

python3 - "$OUT" "$start" "$end" <<'PY'
import json, sys, os
out, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
c = json.load(open(os.path.join(out, "big-compile.json")))
v = json.load(open(os.path.join(out, "verify.json")))
v98 = json.load(open(os.path.join(out, "verify98.json")))
vl = json.load(open(os.path.join(out, "verify-loaded.json")))
wall = end - start
ratio = v["sim_cycles_per_second"] / v["rtl_cycles_per_second"]
print(f'compile 784-1024-1024-1024-10: {c["seconds"]:.3f} s in the compiler, {wall:.2f} s for the whole command')
print(f'verify: {v["frames"]} frames, {v["mismatches"]} mismatches; simulator {v["sim_cycles_per_second"]:.3e} cycles/s, '
      f'Verilator {v["rtl_cycles_per_second"]:.3e} cycles/s: {ratio:.1f}x')
checks = [
    ("compile 784-1024-1024-1024-10 under 2 s", wall < 2.0, f"{wall:.2f} s"),
    ("simulator at least 5x Verilator", ratio >= 5.0, f"{ratio:.1f}x"),
    ("every frame and cycle agrees", v["mismatches"] == 0, f'{v["mismatches"]} mismatches over {v["frames"]} frames'),
    ("8 pixels per beat: every frame and cycle agrees", v98["mismatches"] == 0,
     f'{v98["mismatches"]} mismatches over {v98["frames"]} frames'),
    ("weights loaded into RAM: every frame and cycle agrees", vl["mismatches"] == 0,
     f'{vl["mismatches"]} mismatches over {vl["frames"]} frames'),
]
for name, ok, val in checks:
    print(f'{"PASS" if ok else "FAIL"}  {name}: {val}')
PY
