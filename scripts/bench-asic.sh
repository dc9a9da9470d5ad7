#!/usr/bin/env bash
# The ASIC targets of `flipchip asic`: a 64-32-10 digits model synthesised, timed, checked at
# gate level and laid out on OSU018 (place, route, DRC, LVS, GDS: about half an hour on 2
# loaded cores), and Fashion-MNIST 784-256-256-10 synthesised, timed and checked on 100 test frames
# when the dataset is installed, and `dse --device asic-osu018 --synth 7` on two digits models.
# Prints one line per design with the figures of the README's tables.
# Usage: scripts/bench-asic.sh [--fmnist] [OUT_DIR] [CLOCK_MHZ]
# --fmnist runs only the Fashion-MNIST 784-256-256-10 table instead: the auto design and two
# front designs of `dse --device asic-osu018` (the smallest area, and the fastest below 4.2 mm^2
# estimated), each synthesised, timed, checked at gate level on 100 test frames and costed, with
# the exploration's area estimate and clock model beside the measured figures (hours on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
fmnist_only=0
if [ "${1:-}" = "--fmnist" ]; then
  fmnist_only=1
  shift
fi
out="${1:-target/bench-asic}"
clock="${2:-100}"
mkdir -p "$out"
cargo build --release -q
fc=target/release/flipchip
[ -n "${CARGO_TARGET_DIR:-}" ] && fc="$CARGO_TARGET_DIR/release/flipchip"

summary() {
  python3 - "$1" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
l = v.get("layout") or {}
print(f"{v['model']:<40} {v['tech']}: {v['cells']} cells, {v['area_um2']:.0f} um^2 "
      f"({100*v['flip_flop_area_share']:.0f}% flip-flops), Fmax {v['fmax_mhz']:.1f} MHz, "
      f"{v['frames_per_second']:.0f} frames/s at {v['clock_mhz']} MHz, {v['power_mw']:.2f} mW, "
      f"{v['energy_per_frame_nj']:.2f} nJ/frame, {v['energy_per_synapse_op_pj']:.3f} pJ/op, "
      f"gate-level mismatches {v['gate_level']['mismatches']}/{v['gate_level']['frames']}; "
      f"layout: die {l.get('die_um')}, post-route Fmax {l.get('post_route_fmax_mhz')}, "
      f"DRC {v['drc_errors']}, LVS {v['lvs_match']}, GDS {v['gds']}; {v['seconds']:.0f} s")
if l:
    steps = v.get("step_seconds", {})
    times = ", ".join(f"{k[len('layout_'):]} {s:.0f} s" for k, s in steps.items() if k.startswith("layout_"))
    met = v["drc_errors"] == 0 and v["lvs_match"] is True and l.get("post_route_timing_met") is True
    print(f"  target (routed, 0 DRC errors, LVS clean, post-route timing met at {v['clock_mhz']} MHz): "
          f"{'MET' if met else 'NOT MET'}; {l.get('placed_cells')} placed cells, "
          f"{l.get('failed_routes')} failed routes, LVS errors {l.get('lvs_errors')}; layout steps: {times}")
PY
}

if [ "$fmnist_only" = 1 ]; then
  fmnist=/usr/share/datasets/fashion-mnist
  [ -d "$fmnist" ] || { echo "Fashion-MNIST not installed ($fmnist): scripts/setup.sh installs it" >&2; exit 1; }
  fo="$out/fmnist"
  mkdir -p "$fo"
  model="$fo/fm.fcm"
  [ -f "$model" ] || "$fc" train --data "$fmnist" --arch 784-256-256-10 --epochs 10 --seed 1 --out "$model" --quiet
  "$fc" dse "$model" --device asic-osu018 --out "$fo/dse" --json | tail -n 1 > "$fo/dse-line.json"
  # The two front designs, as fold files; their estimates and clock model for the comparison.
  python3 - "$fo" <<'PY'
import json, sys
fo = sys.argv[1]
d = json.load(open(f"{fo}/dse/dse.json"))
front = [d["candidates"][i] for i in d["front"]]
small = min(front, key=lambda c: c["area_um2"])
fast = max((c for c in front if c["area_um2"] <= 4.2e6), key=lambda c: c["frames_per_second"])
for name, c in [("small", small), ("fast", fast)]:
    json.dump(c["fold"], open(f"{fo}/fold-{name}.json", "w"), indent=1)
    print(f"{name}: {c['folding']}, estimate {c['area_um2']:.0f} um^2, clock model {c['clock_mhz']} MHz")
PY
  for design in auto small fast; do
    fold=auto
    [ "$design" = auto ] || fold="$fo/fold-$design.json"
    start=$(date +%s)
    /usr/bin/time -v "$fc" asic "$model" --tech osu018 --clock "$clock" --data "$fmnist" --frames 100 \
      --fold "$fold" --out "$fo/$design" 2> >(tee "$fo/$design.log" >&2)
    echo "fmnist $design: $(( $(date +%s) - start )) s wall, peak $(grep 'Maximum resident' "$fo/$design.log" | awk '{print $NF}') KB"
    summary "$fo/$design/asic.json"
    python3 - "$fo/dse/dse.json" "$fo/$design/asic.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); v = json.load(open(sys.argv[2]))
fold = json.load(open(v["netlist"].rsplit("/", 1)[0] + "/fold.json"))
label = " ".join(([f"{fold['pixels_per_beat']}px"] if fold["pixels_per_beat"] > 1 else [])
                 + [f"{l['pe']}x{l['simd']}" for l in fold["layers"]])
c = [c for c in d["candidates"] if c["folding"] == label]
if c:
    c = c[0]
    err = (c["area_um2"] - v["area_um2"]) / v["area_um2"]
    print(f"  dse {label}: estimate {c['area_um2']:.0f} um^2 ({100*err:+.1f}% against synthesis), "
          f"clock model {c['clock_mhz']} MHz against STA Fmax {v['fmax_mhz']:.1f} MHz; "
          f"steps: " + ", ".join(f"{k} {s:.0f} s" for k, s in v["step_seconds"].items()))
else:
    print(f"  dse: {label} is not among the exploration's candidates")
PY
  done
  exit 0
fi

digits="$out/digits-64-32-10.fcm"
[ -f "$digits" ] || "$fc" train --arch 64-32-10 --out "$digits" --quiet
start=$(date +%s)
"$fc" asic "$digits" --tech osu018 --clock "$clock" --out "$out/digits-64-32-10" --layout
echo "digits 64-32-10 with layout: $(( $(date +%s) - start )) s wall"
summary "$out/digits-64-32-10/asic.json"

# The ASIC design-space exploration: the front of the default digits model (64-128-10) and of
# 64-32-10 on OSU018, costed by the area estimate, 7 front designs of each synthesised to check
# it (about 10 minutes on 2 cores).
default="$out/digits-64-128-10.fcm"
[ -f "$default" ] || "$fc" train --out "$default" --quiet
for m in "$default" "$digits"; do
  name=$(basename "$m" .fcm)
  "$fc" dse "$m" --device asic-osu018 --synth 7 --out "$out/dse-$name" --json \
    | tail -n 1 > "$out/dse-$name.json"
  python3 - "$out/dse-$name.json" "$name" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
for r in v["synth"]:
    print(f"dse {sys.argv[2]:<20} {r['folding']:<22} {r['cells']:>6} cells {r['area_um2']:>10.0f} um^2 "
          f"estimate {r['est_area_um2']:>10.0f} ({100*r['area_error']:+.1f}%), Fmax {r['fmax_mhz']:.1f} MHz "
          f"(clock model {r['clock_mhz']:.1f})")
worst = max(abs(r["area_error"]) for r in v["synth"])
print(f"dse {sys.argv[2]}: worst area error {100*worst:.1f}% over {len(v['synth'])} front designs "
      f"(target: within 15%): {'MET' if worst <= 0.15 else 'NOT MET'}")
PY
done

fmnist=/usr/share/datasets/fashion-mnist
if [ -d "$fmnist" ]; then
  model="$out/fmnist-784-256-256-10.fcm"
  [ -f "$model" ] || "$fc" train --data "$fmnist" --arch 784-256-256-10 --epochs 3 --out "$model" --quiet
  "$fc" asic "$model" --tech osu018 --clock "$clock" --data "$fmnist" --frames 100 \
    --out "$out/fmnist-auto"
  summary "$out/fmnist-auto/asic.json"
else
  echo "Fashion-MNIST not installed ($fmnist): scripts/setup.sh installs it"
fi
