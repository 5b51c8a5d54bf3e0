#!/usr/bin/env bash
# Stop the single-node Slurm cluster started by tests/slurm/start.sh and remove what it wrote:
# cancels the remaining jobs, stops slurmd and slurmctld (and munged when start.sh started it) by
# their pid files, removes /etc/slurm/{slurm,gres}.conf when they carry start.sh's marker, and
# deletes the state directory. Safe to run twice or when nothing is running.
#
# Usage: tests/slurm/stop.sh [STATE_DIR]       (same default as start.sh)
set -uo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

state=${1:-${PRUNEDISSECT_SLURM_STATE:-/tmp/prunedissect-slurm}}
marker="# prunedissect test cluster: written by tests/slurm/start.sh, removed by tests/slurm/stop.sh"
conf=/etc/slurm/slurm.conf

ours() { [ -e "$1" ] && grep -qxF "$marker" "$1"; }

# Stop a daemon by its pid file and wait (up to 20 s) until it has exited.
stop_pid_file() {
    local pid_file=$1 pid
    [ -s "$pid_file" ] || return 0
    pid=$(cat "$pid_file")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$pid_file"
}

if ours "$conf" && command -v scontrol >/dev/null 2>&1 && scontrol ping >/dev/null 2>&1; then
    # Cancel what is still queued or running, and give slurmd time to kill the job processes.
    jobs=$(squeue -h -t PENDING,RUNNING,CONFIGURING,COMPLETING,SUSPENDED -o %i 2>/dev/null)
    if [ -n "$jobs" ]; then
        # shellcheck disable=SC2086
        scancel $jobs
        for _ in $(seq 30); do
            [ -z "$(squeue -h -t PENDING,RUNNING,CONFIGURING,COMPLETING -o %i 2>/dev/null)" ] && break
            sleep 1
        done
    fi
fi

stop_pid_file "$state/slurmd.pid"
stop_pid_file "$state/slurmctld.pid"
if [ -s "$state/munged.started.pid" ]; then
    stop_pid_file "$state/munged.started.pid"
fi

for f in "$conf" /etc/slurm/gres.conf; do
    ours "$f" && rm -f "$f"
done
case "$state" in
    /tmp/* | /var/tmp/*) rm -rf "$state" ;;
    *) [ -d "$state" ] && echo "left the state directory $state in place (not under /tmp)" ;;
esac
exit 0
