#!/usr/bin/env bash
# `flipchip regress` on the benchmark suite (examples/regress/bench.toml, 224 model x folding x
# check cases), from an empty work directory (every model trained or made, every design
# compiled, every Verilator and Icarus testbench built), JOBS cases at a time. Prints the case
# count, how many passed, the wall time and the CPU time (on a machine shared with other work
# the wall time alone says little); then a second run on the same work directory, where every
# case is taken from the first.
#
#   scripts/bench-regress.sh [JOBS]      # default 2
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${1:-2}"
cargo build --release --quiet
FC="${CARGO_TARGET_DIR:-target}/release/flipchip"
work="$(mktemp -d "${TMPDIR:-/tmp}/flipchip-bench-regress.XXXXXX")"
trap 'rm -rf "$work"' EXIT
run() { # name
  python3 - "$1" "$work" "$jobs" "$FC" <<'PY'
import json, resource, subprocess, sys, time
name, work, jobs, fc = sys.argv[1:]
t0 = time.time()
with open(f"{work}/{name}.log", "w") as log:
    out = subprocess.run(
        [fc, "regress", "examples/regress/bench.toml", "--jobs", jobs, "--json",
         "--junit", f"{work}/bench.xml", "--workdir", f"{work}/w"],
        stdout=subprocess.PIPE, stderr=log, text=True)
wall = time.time() - t0
r = resource.getrusage(resource.RUSAGE_CHILDREN)
s = json.loads(out.stdout.strip().splitlines()[-1])
print(f"{name} run: {s['cases']} cases, {s['passed']} passed, {s['failed']} failed, "
      f"{s['errors']} errors, {s['cached']} from an earlier run; {wall:.1f} s wall, "
      f"{r.ru_utime + r.ru_stime:.1f} CPU s (--jobs {jobs}, {s['executor']})")
PY
}
echo "== $(nproc) cores (load average $(cut -d' ' -f1-3 /proc/loadavg)), examples/regress/bench.toml"
run first
grep -E '^(check|reference|verilator|icarus|cycles) ' "$work/first.log" || true
grep -E '^(FAILED|ERROR)' "$work/first.log" || true
run second
python3 - "$work/bench.xml" <<'PY'
import sys, xml.etree.ElementTree as E
s = E.parse(sys.argv[1]).getroot().find("testsuite")
print(f"JUnit: {s.get('tests')} test cases, {s.get('failures')} failures, {s.get('errors')} errors")
PY
