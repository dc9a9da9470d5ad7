#!/usr/bin/env bash
# Installs everything flipchip's tests and demo need beyond the Rust toolchain.
# Idempotent: a second run only checks that each tool is present.
set -euo pipefail

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }
have verilator || need_apt+=(verilator)
have iverilog  || need_apt+=(iverilog)
have yosys     || need_apt+=(yosys)
have nextpnr-ice40 || need_apt+=(nextpnr-ice40)
have icepack   || need_apt+=(fpga-icestorm)
[ -d /usr/share/datasets/fashion-mnist ] || need_apt+=(dataset-fashion-mnist)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
else
  echo "setup: Debian packages present"
fi
