# Shared by the board benchmarks (sourced, with OUT set): the tools, the flipchip binary, the
# digits and Fashion-MNIST 784-256-256-10 models in $OUT, and `build NAME ARGS...`, which runs
# `flipchip build ARGS... --out $OUT/NAME` unless that build.json exists.
scripts/setup.sh --ecp5 >/dev/null
cargo build --release --quiet
FC=target/release/flipchip
FMNIST=/usr/share/datasets/fashion-mnist
mkdir -p "$OUT"

echo "== training the models"
[ -f "$OUT/digits.fcm" ] || "$FC" train --out "$OUT/digits.fcm" --quiet
[ -f "$OUT/fmnist.fcm" ] || "$FC" train --data "$FMNIST" --arch 784-256-256-10 --epochs 10 \
  --batch 100 --out "$OUT/fmnist.fcm" --quiet

build() { # name, args...
  local name=$1; shift
  if [ ! -f "$OUT/$name/build.json" ]; then
    echo "== build $name: $*"
    "$FC" build "$@" --out "$OUT/$name" >/dev/null
  fi
}
