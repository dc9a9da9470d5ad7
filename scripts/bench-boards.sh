#!/usr/bin/env bash
# Board benchmark of the bitstream and exploration issue: the figures its targets name, each
# from a real run of the flow.
#   - the embedded-digits model on the iCEBreaker at 12 MHz: timing met?
#   - Fashion-MNIST 784-256-256-10 on the ULX3S at 50 MHz (auto folding): timing met, frames/s, LUTs
#   - `dse --device ecp5-85k --synth 6` on that model: the best fitting design, the estimator's
#     error against Yosys on the synthesised front designs (target: within 15%)
#   - with --best: that design built for the ULX3S at the clock the exploration expects, its
#     frames/s, LUTs and frames/s per LUT against the exploration's prediction (about an hour)
#
#   scripts/bench-boards.sh [--best]     (about 18 minutes on 2 cores without --best, measured)
#
# A build whose build.json is already in build/bench-boards/ is reused; delete the folder to
# rebuild it.
set -euo pipefail
cd "$(dirname "$0")/.."
best=0
for arg in "$@"; do
  case "$arg" in
    --best) best=1 ;;
    *) echo "usage: scripts/bench-boards.sh [--best]" >&2; exit 2 ;;
  esac
done
OUT=build/bench-boards
# shellcheck source=board-bench-common.sh
source scripts/board-bench-common.sh

build digits-icebreaker "$OUT/digits.fcm" --board icebreaker --freq 12
build fmnist-ulx3s "$OUT/fmnist.fcm" --board ulx3s --freq 50

echo "== dse Fashion-MNIST on the ECP5-85K, 6 front designs synthesised"
if [ ! -f "$OUT/dse/dse.json" ] || [ "$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['synth']))" "$OUT/dse/dse.json")" = 0 ]; then
  "$FC" dse "$OUT/fmnist.fcm" --device ecp5-85k --synth 6 --out "$OUT/dse" >/dev/null
fi

# The exploration's best fitting design as a fold file, and the clock it expects.
read -r best_mhz < <(python3 - "$OUT/dse/dse.json" "$OUT/best-fold.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
c = d["candidates"][d["best"]]
fold = c["fold"]
json.dump(fold, open(sys.argv[2], "w"))
print(c["clock_mhz"])
PY
)
if [ "$best" = 1 ]; then
  build fmnist-ulx3s-best "$OUT/fmnist.fcm" --board ulx3s --fold "$OUT/best-fold.json" \
    --freq "$best_mhz"
fi

python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
def load(p):
    p = os.path.join(out, p)
    return json.load(open(p)) if os.path.exists(p) else None
checks = []
b = load("digits-icebreaker/build.json")
print(f'digits, iCEBreaker, 12 MHz: {b["luts"]} LUTs, {b["ffs"]} FFs, Fmax {b["fmax_mhz"]:.1f} MHz, '
      f'{b["frames_per_second"]:,.0f} frames/s')
checks.append(("digits on the iCEBreaker meets timing at 12 MHz", b["timing_met"] and b["requested_mhz"] >= 12,
               f'Fmax {b["fmax_mhz"]:.1f} MHz'))
f = load("fmnist-ulx3s/build.json")
print(f'Fashion-MNIST 784-256-256-10, ULX3S, auto folding, 50 MHz: {f["luts"]} LUTs, {f["ffs"]} FFs, '
      f'Fmax {f["fmax_mhz"]:.1f} MHz, {f["frames_per_second"]:,.0f} frames/s')
checks.append(("Fashion-MNIST on the ULX3S meets timing at 50 MHz or more",
               f["timing_met"] and f["requested_mhz"] >= 50, f'Fmax {f["fmax_mhz"]:.1f} MHz'))
d = load("dse/dse.json")
c = d["candidates"][d["best"]]
print(f'dse best fitting design: {c["folding"]}, {c["cycles_per_frame"]} cycles, '
      f'{c["frames_per_second"]:,.0f} frames/s at {c["clock_mhz"]} MHz, ~{c["est_luts"]} LUTs, '
      f'{c["frames_per_second_per_lut"]:.1f} frames/s per LUT (predicted)')
errs = [s["lut_error"] for s in d["synth"]]
print(f'estimator against Yosys on {len(errs)} front designs: {min(errs)*100:+.1f}% .. {max(errs)*100:+.1f}%')
checks.append(("estimator within 15% of Yosys on the synthesised front designs",
               bool(errs) and max(abs(e) for e in errs) <= 0.15, f'worst {max(abs(e) for e in errs)*100:.1f}%'))
checks.append(("the simulator confirms the front's cycles per frame", d["sim"] and all(s["agrees"] for s in d["sim"]), ""))
g = load("fmnist-ulx3s-best/build.json")
if g:
    print(f'dse best built for the ULX3S at {g["requested_mhz"]} MHz: {g["luts"]} LUTs, {g["ffs"]} FFs, '
          f'Fmax {g["fmax_mhz"]:.1f} MHz, {g["frames_per_second"]:,.0f} frames/s, '
          f'{g["frames_per_second"] / g["luts"]:.1f} frames/s per LUT')
    ratio = g["frames_per_second"] / c["frames_per_second"]
    checks.append(("built best design within 10% of the exploration's frames/s", abs(ratio - 1) <= 0.10,
                   f'{ratio*100:.0f}% of the prediction'))
for name, ok, val in checks:
    print(f'{"PASS" if ok else "FAIL"}  {name}: {val}')
PY
