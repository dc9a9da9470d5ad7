#!/usr/bin/env bash
# Hardware benchmark of the convolutional issue: the Fashion-MNIST CNN c32-c32-p-c64-c64-p-256-10
# (4 bit planes, flip, 10 epochs, seed 1) through every hardware stage, with the figures its
# targets name:
#   - `dse --device ecp5-85k`: the best fitting design and the clock the exploration expects;
#   - that design compiled and `verify --rtl verilator` over 1,000 test frames with bubbles and
#     stalls: mismatches, rtl_mismatches, the simulator's cycles per second against Verilator's
#     (target: 0, 0, >= 10x);
#   - that design on the ULX3S at 50 MHz: fits, timing met, Fmax, frames/s (target: met);
#   - with --best: that design also at the clock the exploration expects (about 20 minutes);
#   - the digits CNN c16-p-c32-64-10 on the iCEBreaker at 12 MHz: timing met.
#
#   scripts/bench-conv-hw.sh [--best] [--no-build] [--model FILE]
#     --model FILE   a trained model of that architecture instead of training one (25-40 min)
#     --no-build     exploration, compile and verify only (a few minutes)
#
# Results go to build/bench-conv-hw/; a build whose build.json is there already is reused
# (delete the folder to rebuild).
set -euo pipefail
cd "$(dirname "$0")/.."
best=0
nobuild=0
model=""
while [ $# -gt 0 ]; do
  case $1 in
    --best) best=1 ;;
    --no-build) nobuild=1 ;;
    --model) model=$2; shift ;;
    *) echo "usage: scripts/bench-conv-hw.sh [--best] [--no-build] [--model FILE]" >&2; exit 2 ;;
  esac
  shift
done
OUT=build/bench-conv-hw
# shellcheck source=board-bench-common.sh
source scripts/board-bench-common.sh
ARCH=c32-c32-p-c64-c64-p-256-10

if [ -n "$model" ]; then
  [ -f "$model" ] || { echo "bench-conv-hw: no model file $model" >&2; exit 1; }
  cp "$model" "$OUT/cnn.fcm"
elif [ ! -f "$OUT/cnn.fcm" ]; then
  echo "== training $ARCH (10 epochs, seed 1)"
  "$FC" train --data "$FMNIST" --arch "$ARCH" --encoding bitplanes:4 --epochs 10 --seed 1 \
    --out "$OUT/cnn.fcm" --quiet
fi

echo "== dse $ARCH on the ECP5-85K"
"$FC" dse "$OUT/cnn.fcm" --device ecp5-85k --out "$OUT/dse" >/dev/null
# The exploration's best fitting design as a fold file, its label and the clock it expects.
read -r best_label best_mhz < <(python3 - "$OUT/dse/dse.json" "$OUT/best-fold.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
c = d["candidates"][d["best"]]
json.dump(c["fold"], open(sys.argv[2], "w"))
print(c["folding"].replace(" ", "_"), c["clock_mhz"])
PY
)
echo "   best fitting: ${best_label//_/ } at ${best_mhz} MHz"

echo "== compile that design and verify 1,000 test frames against Verilator (bubbles and stalls)"
"$FC" compile "$OUT/cnn.fcm" --fold "$OUT/best-fold.json" --out "$OUT/best" >/dev/null \
  2>"$OUT/compile.log"
"$FC" verify --build "$OUT/best" --data "$FMNIST" --frames 1000 --rtl verilator --json \
  2>"$OUT/verify.log" | tail -1 >"$OUT/verify.json"

if [ "$nobuild" = 0 ]; then
  build cnn-ulx3s-50 "$OUT/cnn.fcm" --board ulx3s --fold "$OUT/best-fold.json" --freq 50
  if [ "$best" = 1 ]; then
    build cnn-ulx3s-best "$OUT/cnn.fcm" --board ulx3s --fold "$OUT/best-fold.json" \
      --freq "$best_mhz"
  fi
  [ -f "$OUT/digits-conv.fcm" ] || "$FC" train --arch c16-p-c32-64-10 --out "$OUT/digits-conv.fcm" \
    --quiet
  build digits-conv-icebreaker "$OUT/digits-conv.fcm" --board icebreaker --freq 12
fi

python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
def load(name):
    p = os.path.join(out, name)
    return json.load(open(p)) if os.path.exists(p) else None
checks = []
v = load("verify.json")
if v is None:
    sys.exit("bench-conv-hw: verify wrote no result (see verify.log)")
ratio = v["sim_cycles_per_second"] / v["rtl_cycles_per_second"]
print(f'verify: {v["frames"]} frames, {v["cycles"]} cycles, mismatches {v["mismatches"]}, '
      f'rtl_mismatches {v["rtl_mismatches"]}, simulator {v["sim_cycles_per_second"]:.3g} '
      f'against Verilator {v["rtl_cycles_per_second"]:.3g} cycles/s ({ratio:.1f}x)')
checks += [("0 mismatches", v["mismatches"] == 0, v["mismatches"]),
           ("0 rtl_mismatches", v["rtl_mismatches"] == 0, v["rtl_mismatches"]),
           ("simulator >= 10x Verilator", ratio >= 10, f"{ratio:.1f}x")]
for name, what, freq in [("cnn-ulx3s-50", "CNN on the ULX3S", 50.0),
                         ("cnn-ulx3s-best", "CNN on the ULX3S at the expected clock", None),
                         ("digits-conv-icebreaker", "digits CNN on the iCEBreaker", 12.0)]:
    b = load(os.path.join(name, "build.json"))
    if b is None:
        continue
    print(f'{what}: fits {b["fits"]}, {b["luts"]} LUTs, {b["ffs"]} FFs, {b["bram"]} block RAMs, '
          f'Fmax {b["fmax_mhz"]:.1f} MHz at {b["requested_mhz"]} MHz requested, timing met '
          f'{b["timing_met"]}, {b["frames_per_second"]:.0f} frames/s, {b["seconds"]:.0f} s')
    checks.append((f"{what}: fits and timing met", b["fits"] and b["timing_met"],
                   f'{b["fmax_mhz"]:.1f} MHz'))
for name, ok, val in checks:
    print(f'{"PASS" if ok else "FAIL"}  {name}: {val}')
PY
