#!/usr/bin/env bash
# The ASIC targets of `flipchip asic`: a 64-32-10 digits model synthesised, timed, checked at
# gate level and laid out on OSU018 (place, route, DRC, LVS, GDS: about half an hour on 2
# loaded cores), and Fashion-MNIST 784-256-256-10 synthesised, timed and checked on 100 test frames
# when the dataset is installed, and `dse --device asic-osu018 --synth 7` on two digits models.
# Prints one line per design with the figures of the README's tables. Usage: scripts/bench-asic.sh [OUT_DIR] [CLOCK_MHZ]
set -euo pipefail
cd "$(dirname "$0")/.."
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
