#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for the `--executor slurm` tests and for trying the
# executor by hand: munged, slurmctld and slurmd from Debian's munge and slurm-wlm
# (`scripts/setup.sh --slurm`), run as root without systemd, with every piece of state
# (slurm.conf, spool, logs, the munge key and socket) in one directory.
#
#   scripts/slurm-local.sh start [DIR]   # prints SLURM_CONF=DIR/slurm.conf once the node is idle
#   scripts/slurm-local.sh stop  [DIR]   # stops the daemons started in DIR and removes DIR
#
# DIR defaults to $FLIPCHIP_SLURM_DIR, else ${TMPDIR:-/tmp}/flipchip-slurm. The client commands
# (sbatch, squeue, scontrol, scancel) reach this cluster with `export SLURM_CONF=DIR/slurm.conf`.
# Ports are chosen free at start, so several clusters (one per test) can run side by side.
set -euo pipefail

die() { echo "slurm-local: $*" >&2; exit 1; }
usage() { die "usage: $0 start|stop [DIR]"; }

cmd="${1:-}"
dir="${2:-${FLIPCHIP_SLURM_DIR:-${TMPDIR:-/tmp}/flipchip-slurm}}"
[ -n "$cmd" ] || usage

# Kills the daemons whose pid files are in $dir: only what this script started there.
stop_daemons() {
  local pidfile pid
  for pidfile in "$dir"/slurmd.pid "$dir"/slurmctld.pid "$dir"/munged.pid; do
    [ -f "$pidfile" ] || continue
    pid="$(cat "$pidfile" 2>/dev/null || true)"
    [ -n "$pid" ] || continue
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
  # Job steps a killed slurmd left behind (slurmstepd) carry this cluster's spool directory.
  if [ -d "$dir/spool" ]; then
    local stray
    for stray in $(pgrep -f "slurmstepd.*" 2>/dev/null || true); do
      if grep -qs "$dir" "/proc/$stray/environ" "/proc/$stray/cmdline"; then
        kill -9 "$stray" 2>/dev/null || true
      fi
    done
  fi
}

# True if nothing listens on TCP port $1 of this machine.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port_pair() {
  local base
  for _ in $(seq 50); do
    base=$((20000 + RANDOM % 20000))
    if port_free "$base" && port_free "$((base + 1))"; then echo "$base"; return 0; fi
  done
  die "found no free pair of TCP ports for slurmctld and slurmd"
}

show_log() { [ -f "$1" ] && { echo "--- last lines of $1:" >&2; tail -n 15 "$1" >&2; }; }

start() {
  local tool
  for tool in munged slurmctld slurmd sbatch squeue scontrol scancel; do
    command -v "$tool" >/dev/null 2>&1 \
      || die "$tool not found; install Slurm with: scripts/setup.sh --slurm (Debian packages slurm-wlm, munge)"
  done
  [ "$(id -u)" -eq 0 ] || die "must run as root (slurmd starts jobs as their user); run it with sudo"
  if [ -f "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; then
    die "a cluster already runs in $dir (scripts/slurm-local.sh stop $dir first)"
  fi
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  mkdir -p "$dir/state" "$dir/spool" "$dir/log"
  chmod 700 "$dir"

  # munge: a fresh key, the socket in $dir. --force because the socket's parent may sit under a
  # world-writable /tmp, which munged otherwise refuses.
  head -c 1024 /dev/urandom >"$dir/munge.key"
  chmod 400 "$dir/munge.key"
  munged --force --key-file="$dir/munge.key" --socket="$dir/munge.socket" \
    --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munged.seed" \
    || { show_log "$dir/log/munged.log"; die "munged did not start (log: $dir/log/munged.log)"; }

  local ports node cpus
  ports="$(free_port_pair)"
  node="$(hostname -s)"
  cpus="$(nproc)"
  # Accounting storage is off (no slurmdbd): job states come from squeue and scontrol, which
  # keep a finished job for MinJobAge seconds; the completion log is a plain text file.
  cat >"$dir/slurm.conf" <<EOF
ClusterName=flipchip-local
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ports
SlurmdPort=$((ports + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
MinJobAge=600
MaxArraySize=10001
SchedulerParameters=sched_interval=1
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=local Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF="$dir/slurm.conf"
  # -i: ignore state from an earlier run in this directory (there is none after a stop).
  slurmctld -i || { show_log "$dir/log/slurmctld.log"; stop_daemons; die "slurmctld did not start (log: $dir/log/slurmctld.log)"; }
  slurmd || { show_log "$dir/log/slurmd.log"; stop_daemons; die "slurmd did not start (log: $dir/log/slurmd.log)"; }

  # Ready when the node is idle: slurmd has registered and a job can start at once.
  local state=""
  for _ in $(seq 300); do
    state="$(sinfo -h -n "$node" -o %T 2>/dev/null | head -n 1 || true)"
    [ "$state" = "idle" ] && break
    sleep 0.1
  done
  if [ "$state" != "idle" ]; then
    show_log "$dir/log/slurmctld.log"
    show_log "$dir/log/slurmd.log"
    stop_daemons
    die "node $node is '${state:-not registered}' after 30 s, not idle (logs in $dir/log)"
  fi
  echo "slurm-local: cluster up in $dir (node $node, $cpus CPUs, partition local)" >&2
  echo "SLURM_CONF=$dir/slurm.conf"
}

stop() {
  [ -d "$dir" ] || { echo "slurm-local: nothing in $dir" >&2; return 0; }
  [ -f "$dir/slurm.conf" ] || [ -f "$dir/munged.pid" ] \
    || die "$dir does not look like a slurm-local.sh directory; not touching it"
  stop_daemons
  rm -rf "$dir"
  echo "slurm-local: stopped, $dir removed" >&2
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
