#!/usr/bin/env bash
# Install a single-node Slurm (slurm-wlm: slurmctld, slurmd, client commands) and munge from the
# Debian archive. Idempotent: does nothing when the commands are already there.
#
# Usage: tests/slurm/install.sh
# Exit status: 0 installed (or already present); 2 cannot install here (not root, no apt-get);
#              1 apt-get failed.
set -euo pipefail

needed=(sbatch squeue sinfo scontrol slurmctld slurmd munged munge)
missing=()
for cmd in "${needed[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "slurm and munge already installed"
    exit 0
fi
echo "missing commands: ${missing[*]}"

if [ "$(id -u)" -ne 0 ]; then
    echo "cannot install slurm-wlm and munge: this needs root (run as root, or install them with" \
        "'sudo apt-get install --no-install-recommends slurm-wlm munge')" >&2
    exit 2
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "cannot install slurm-wlm and munge: no apt-get on this machine (not Debian/Ubuntu);" \
        "install Slurm and munge with the system's package manager" >&2
    exit 2
fi

export DEBIAN_FRONTEND=noninteractive
install() { apt-get install -y --no-install-recommends slurm-wlm munge; }
# The package lists may be missing or stale on a fresh machine: update once, then retry.
if ! install; then
    apt-get update
    install || exit 1
fi
