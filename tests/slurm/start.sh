#!/usr/bin/env bash
# Start a single-node Slurm cluster on this machine: this host is both the controller (slurmctld)
# and the only compute node (slurmd), with a `cpu` partition (the default) and a `gpu` partition.
#
# The node declares two GPUs of type `testgpu` (GRES gpu:testgpu:2) although it has none. Slurm
# 22.05 drops a GPU GRES without a device file ("Removing file-less GPU"), so gres.conf names two
# placeholder device files, STATE_DIR/dev/testgpu0 and testgpu1, symlinks to /dev/null (the
# trailing digit is the GPU index). No cgroup device constraint is configured, so nothing is
# bound or hidden; Slurm only schedules and accounts the requests: `--gpus=1`, `--gpus=testgpu:1`
# and `--gres=gpu:1` are accepted, land on this node, at most two such jobs run at once, and the
# job sees CUDA_VISIBLE_DEVICES set, but on a machine without a GPU its code runs on the CPU.
# This tests what a cluster profile controls (which jobs ask for what, where they go) without
# pretending that the jobs used a GPU.
#
# Usage: tests/slurm/start.sh [STATE_DIR]      (default: $PRUNEDISSECT_SLURM_STATE or
#                                               /tmp/prunedissect-slurm)
# Writes /etc/slurm/slurm.conf and /etc/slurm/gres.conf (marked as ours; refuses to overwrite
# files it did not write), keeps spool, state, logs and pid files under STATE_DIR, starts munged
# (unless a working one is already running), slurmctld and slurmd, and waits until `sinfo` shows
# the node idle. tests/slurm/stop.sh undoes all of it.
#
# Exit status: 0 cluster up; 2 cannot run here (not root, Slurm not installed, a foreign Slurm
# configuration exists); 1 the daemons did not come up (the logs are printed).
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

state=${1:-${PRUNEDISSECT_SLURM_STATE:-/tmp/prunedissect-slurm}}
marker="# prunedissect test cluster: written by tests/slurm/start.sh, removed by tests/slurm/stop.sh"
conf=/etc/slurm/slurm.conf
gres_conf=/etc/slurm/gres.conf
wait_s=${PRUNEDISSECT_SLURM_WAIT_S:-60}

cannot() { echo "cannot start the test Slurm cluster: $*" >&2; exit 2; }

[ "$(id -u)" -eq 0 ] || cannot "the daemons must be started as root (run the tests as root)"
for cmd in slurmctld slurmd munged sinfo scontrol; do
    command -v "$cmd" >/dev/null 2>&1 || cannot "'$cmd' not found; run tests/slurm/install.sh first"
done
for f in "$conf" "$gres_conf"; do
    if [ -e "$f" ] && ! grep -qxF "$marker" "$f"; then
        cannot "$f exists and was not written by this script (a real Slurm is configured here;" \
            "not touching it)"
    fi
done
# A cluster of ours left running (an interrupted test): stop it first, it holds the ports.
if [ -e "$conf" ]; then
    old_state=$(sed -n 's|^StateSaveLocation=\(.*\)/ctld$|\1|p' "$conf")
    if [ -n "$old_state" ]; then
        echo "stopping the test cluster left running with state in $old_state"
        "$(dirname "$0")/stop.sh" "$old_state"
    fi
fi

host=$(hostname -s)
# The node's CPU layout as slurmd detects it (CPUs=2 Boards=1 SocketsPerBoard=1 ... here).
hw=$(slurmd -C | head -n1)
layout=$(echo "$hw" | grep -o 'CPUs=[0-9]* Boards=[0-9]* SocketsPerBoard=[0-9]* CoresPerSocket=[0-9]* ThreadsPerCore=[0-9]*')
cpus=$(echo "$layout" | sed -n 's/^CPUs=\([0-9]*\).*/\1/p')
# Declare 90% of the physical memory so that a small fluctuation does not drain the node
# ("Low RealMemory").
mem_total=$(free -m | awk '/^Mem:/ {print $2}')
real_memory=$((mem_total * 9 / 10))

mkdir -p "$state/ctld" "$state/spool" "$state/dev" /etc/slurm
for i in 0 1; do ln -sfn /dev/null "$state/dev/testgpu$i"; done
chmod 755 "$state"

cat >"$conf" <<CONF
$marker
ClusterName=prunedissect-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
# No cgroups (this may run in a container): track job processes by process tree.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
# No accounting database: sacct cannot answer, so clients query job states with squeue, which
# keeps finished jobs for MinJobAge seconds; jobcomp/filetxt records every finished job.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$state/jobcomp.txt
MinJobAge=3600
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
ReturnToService=2
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
NodeName=$host $layout RealMemory=$real_memory Gres=gpu:testgpu:2 State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$host MaxTime=INFINITE State=UP
CONF

cat >"$gres_conf" <<GRES
$marker
# Two placeholder GPUs (symlinks to /dev/null): scheduled and accounted, no device behind them.
NodeName=$host Name=gpu Type=testgpu File=$state/dev/testgpu[0-1]
GRES

# munge: reuse a working daemon, otherwise start our own (as the munge user, like the service).
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    echo "munged already running"
else
    if [ ! -s /etc/munge/munge.key ]; then
        mungekey --create --keyfile=/etc/munge/munge.key
        chown munge:munge /etc/munge/munge.key
        chmod 600 /etc/munge/munge.key
    fi
    install -d -o munge -g munge -m 755 /run/munge
    runuser -u munge -- munged --pid-file=/run/munge/munged.pid
    cp /run/munge/munged.pid "$state/munged.started.pid"
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.2
    done
    munge -n | unmunge >/dev/null || { echo "munged did not start" >&2; exit 1; }
fi

dump_logs() {
    echo "---- sinfo" >&2; sinfo -N -l >&2 || true
    echo "---- scontrol show node" >&2; scontrol show node >&2 || true
    for log in "$state/slurmctld.log" "$state/slurmd.log"; do
        echo "---- $log (last 40 lines)" >&2; tail -n 40 "$log" >&2 || true
    done
}

slurmctld -f "$conf"
slurmd -f "$conf"

deadline=$((SECONDS + wait_s))
state_now=""
while [ $SECONDS -lt $deadline ]; do
    state_now=$(sinfo -h -N -n "$host" -o %t 2>/dev/null | head -n1 || true)
    case "$state_now" in
        idle) break ;;
        # A node that was down when the controller went away comes back down: resume it.
        down* | drain*) scontrol update NodeName="$host" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 1
done
if [ "$state_now" != idle ]; then
    echo "the node did not become idle within ${wait_s}s (state: '${state_now:-unknown}')" >&2
    dump_logs
    exit 1
fi
echo "slurm cluster up: node $host idle (CPUs=$cpus RealMemory=$real_memory gpu:testgpu:2)," \
    "partitions cpu (default) and gpu; state in $state"
