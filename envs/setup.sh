#!/usr/bin/env bash
# Create or update .venv at the repository root from the hash-locked lockfile.
#
# Idempotent: a stamp records the hashes of the lockfile and pyproject.toml, so a second call
# costs nothing. Every package is installed with --require-hashes from envs/requirements.lock
# (pip refuses anything whose hash differs), then the prunedissect package itself is installed
# editable from src/ without touching the network (no build isolation; setuptools is locked).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python=${PRUNEDISSECT_PYTHON:-python3.11}
stamp=.venv/.prunedissect-lock.sha256
want=$(cat envs/requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)

if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
    exit 0
fi
if ! command -v "$python" >/dev/null; then
    echo "envs/setup.sh: $python not found; install Python 3.11 or set PRUNEDISSECT_PYTHON" >&2
    exit 1
fi
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
echo "envs/setup.sh: installing the locked environment into .venv (first time: a few minutes)" >&2
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
    --require-hashes --no-deps -r envs/requirements.lock 2> >(grep -v "is ignored: it is neither" >&2)
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
    --no-deps --no-build-isolation -e . 2> >(grep -v "is ignored: it is neither" >&2)
echo "$want" >"$stamp"
