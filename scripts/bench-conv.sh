#!/usr/bin/env bash
# Convolutional training benchmark: flipchip against the PyTorch peer on Fashion-MNIST
# c32-c32-p-c64-c64-p-256-10 (3x3 convolutions, 2x2 max-pools), 4 bit planes, side by side.
#   flip:  `flipchip seeds --seeds 1,2,3 --json` (mean test accuracy, mean epoch seconds, state
#          bytes per weight), its peak memory measured around the whole command;
#   peer:  scripts/peers/torch_bnn_cnn.py (latent f32 weights, STE, Adam, batch norm, batch 100),
#          its epoch time and peak memory (one seed is enough for those).
# Peak memory is the maximum resident set from `/usr/bin/time -v` where it exists, otherwise
# the VmHWM of /proc/PID/status polled until the process ends; the same for both sides.
# Targets checked at the end: flip's mean test accuracy >= 91.0%, epoch <= 0.5x the peer's,
# state <= 1.5 B/weight, peak memory <= 1/4 of the peer's.
#
#   scripts/bench-conv.sh                  everything: 10 epochs, seeds 1,2,3, peer seed 1
#   scripts/bench-conv.sh flip             flip side only (the peer's last result is reused)
#   scripts/bench-conv.sh peer             peer side only
#   scripts/bench-conv.sh summary          print the table and checks of the last run again
#   --epochs N      epochs of both sides (default 10; EPOCHS=N)
#   --seeds LIST    flip's seeds (default 1,2,3; SEEDS=LIST)
#   --peer-epochs N / --peer-seeds LIST    the peer's (default: --epochs / 1)
#   --optimizer X   flipchip optimizer of the flip side (default flip; OPTIMIZER=X)
#   --quick         1 epoch, seed 1 on both sides (a check that the script runs)
# Environment: FMNIST (the data directory), OUT (where results go, default build/bench-conv).
# e.g. a quick check of both halves with a baseline optimizer:
#   scripts/bench-conv.sh --quick --optimizer binaryconnect
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${EPOCHS:-10}
SEEDS=${SEEDS:-1,2,3}
OPTIMIZER=${OPTIMIZER:-flip}
PEER_EPOCHS=${PEER_EPOCHS:-}
PEER_SEEDS=${PEER_SEEDS:-1}
only=all
while [ $# -gt 0 ]; do
  case $1 in
    all|flip|peer|summary) only=$1 ;;
    --epochs) EPOCHS=$2; shift ;;
    --seeds) SEEDS=$2; shift ;;
    --peer-epochs) PEER_EPOCHS=$2; shift ;;
    --peer-seeds) PEER_SEEDS=$2; shift ;;
    --optimizer) OPTIMIZER=$2; shift ;;
    --quick) EPOCHS=1; SEEDS=1; PEER_EPOCHS=1; PEER_SEEDS=1 ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"; exit 0 ;;
    *) echo "bench-conv: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
PEER_EPOCHS=${PEER_EPOCHS:-$EPOCHS}
ARCH=c32-c32-p-c64-c64-p-256-10
FMNIST=${FMNIST:-/usr/share/datasets/fashion-mnist}
OUT=${OUT:-build/bench-conv}
mkdir -p "$OUT"
[ -d "$FMNIST" ] || { echo "bench-conv: no Fashion-MNIST at $FMNIST (set FMNIST)" >&2; exit 1; }

# measure NAME CMD...: runs CMD with stdout to $OUT/NAME.out and stderr to $OUT/NAME.log, and
# writes its peak resident set in KiB to $OUT/NAME.peak_kib.
measure() {
  local name=$1; shift
  if [ -x /usr/bin/time ] && /usr/bin/time -v true >/dev/null 2>&1; then
    /usr/bin/time -v -o "$OUT/$name.time" "$@" >"$OUT/$name.out" 2>"$OUT/$name.log"
    awk -F': ' '/Maximum resident set size/ {print $2}' "$OUT/$name.time" >"$OUT/$name.peak_kib"
  else
    "$@" >"$OUT/$name.out" 2>"$OUT/$name.log" &
    local pid=$! peak=0 v
    while kill -0 "$pid" 2>/dev/null; do
      v=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
      [ -n "$v" ] && [ "$v" -gt "$peak" ] && peak=$v
      sleep 0.2
    done
    wait "$pid"
    echo "$peak" >"$OUT/$name.peak_kib"
  fi
}

if [ "$only" = all ] || [ "$only" = flip ]; then
  cargo build --release --quiet
  FC=${CARGO_TARGET_DIR:-target}/release/flipchip
  echo "bench-conv: flipchip $OPTIMIZER $ARCH, $EPOCHS epochs, seeds $SEEDS" >&2
  measure flip "$FC" seeds --data "$FMNIST" --arch "$ARCH" --encoding bitplanes:4 \
    --optimizer "$OPTIMIZER" --epochs "$EPOCHS" --seeds "$SEEDS" --json --quiet \
    --out "$OUT/flip.fcm"
  tail -1 "$OUT/flip.out" >"$OUT/flip.json"
  printf '{"optimizer": "%s", "epochs": %s}\n' "$OPTIMIZER" "$EPOCHS" >"$OUT/flip.run.json"
fi
if [ "$only" = all ] || [ "$only" = peer ]; then
  echo "bench-conv: PyTorch peer $ARCH, $PEER_EPOCHS epochs, seeds $PEER_SEEDS" >&2
  measure peer /usr/bin/python3 scripts/peers/torch_bnn_cnn.py "$FMNIST" --arch "$ARCH" \
    --epochs "$PEER_EPOCHS" --seeds "$PEER_SEEDS"
  grep '^{' "$OUT/peer.out" >"$OUT/peer.jsonl"
fi

python3 - "$OUT" <<'PY'
import json, os, statistics as st, sys
out = sys.argv[1]
def load(name):
    p = os.path.join(out, name)
    return json.load(open(p)) if os.path.exists(p) else None
def peak_mib(name):
    p = os.path.join(out, name + ".peak_kib")
    v = open(p).read().strip() if os.path.exists(p) else ""
    return int(v) / 1024 if v else None
flip, run = load("flip.json"), load("flip.run.json") or {}
peer_path = os.path.join(out, "peer.jsonl")
peer = [json.loads(l) for l in open(peer_path) if l.strip()] if os.path.exists(peer_path) else []
if not flip and not peer:
    sys.exit("bench-conv: nothing measured yet")
fmt = lambda v, f: "-" if v is None else f.format(v)
print(f'{"":<34} {"test acc %":>10} {"epochs":>6} {"s/epoch":>9} {"state B/w":>9} {"peak MiB":>9}')
fm = peak_mib("flip")
if flip:
    name = f'flipchip {run.get("optimizer", "?")} (seeds {",".join(map(str, flip["seeds"]))})'
    print(f'{name:<34} {flip["accuracy_mean"]*100:10.2f} {run.get("epochs", "?"):>6} '
          f'{flip["epoch_seconds_mean"]:9.2f} {flip["state_bytes_per_weight_mean"]:9.3f} '
          f'{fmt(fm, "{:9.1f}")}')
pm = peak_mib("peer")
if peer:
    pe = st.mean(r["epoch_seconds"] for r in peer)
    pa = st.mean(r["accuracy"] for r in peer)
    name = f'pytorch peer (seeds {",".join(str(r["seed"]) for r in peer)})'
    print(f'{name:<34} {pa*100:10.2f} {peer[0]["epochs"]:>6} {pe:9.2f} {"":>9} {fmt(pm, "{:9.1f}")}')
    print(f'  (peer: torch {peer[0]["torch"]}, {peer[0]["threads"]} threads, '
          f'{peer[0]["weights"]} weights; its own ru_maxrss {max(r["peak_memory_mib"] for r in peer):.1f} MiB)')
if flip:
    checks = [("mean test accuracy >= 91.0%", flip["accuracy_mean"] >= 0.91,
               f'{flip["accuracy_mean"]*100:.2f}%'),
              ("state <= 1.5 B/weight", flip["state_bytes_per_weight_mean"] <= 1.5,
               f'{flip["state_bytes_per_weight_mean"]:.3f}')]
    if peer:
        r = flip["epoch_seconds_mean"] / pe
        checks.append(("epoch <= 0.5x the peer's", r <= 0.5,
                       f'{flip["epoch_seconds_mean"]:.2f} s / {pe:.2f} s = {r:.2f}x'))
        if fm and pm:
            checks.append(("peak memory <= 1/4 of the peer's", fm <= pm / 4,
                           f'{fm:.1f} MiB / {pm:.1f} MiB = {fm / pm:.2f}x'))
    if run.get("optimizer") != "flip" or run.get("epochs") != 10:
        print(f'note: flip side ran {run.get("optimizer")} for {run.get("epochs")} epochs; the '
              'targets are for flip over 10 epochs')
    for name, ok, val in checks:
        print(f'{"PASS" if ok else "FAIL"}  {name}: {val}')
PY
