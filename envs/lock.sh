#!/usr/bin/env bash
# Refresh the lockfile after editing envs/requirements.in, then regenerate the conda env file
# from it so both routes pin the same versions. Needs uv (pip install uv).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
uv pip compile envs/requirements.in --generate-hashes --python-version 3.11 \
    --python-platform x86_64-manylinux_2_28 --output-file envs/requirements.lock "$@"
python3 envs/conda_from_lock.py envs/requirements.lock >envs/prunedissect.yaml
