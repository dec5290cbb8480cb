#!/usr/bin/env bash
# Issue 18's GPU checks in one device call (bench/README.md, "GPU session", gives the exact `run` call):
# installs the wheels that bench/gpu_carry.sh put in .gpucarry/ (offline: the GPU machine reaches nothing), unpacks
# sd-scripts for the comparison, then runs bench/gpu_session.py, which writes its results to $OUT.
# DANLU_GPU_DRYRUN=1: the same on a CPU with tiny models and this machine's own packages (nothing installed).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PY=${PYTHON:-python3}
if [ "${DANLU_GPU_DRYRUN:-0}" = "0" ] && [ -d .gpucarry ]; then
  pip_in() { "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$1" "${@:2}"; }
  pip_in /tmp/site .gpucarry/danlu/*.whl || { echo "installing .gpucarry/danlu failed"; exit 3; }
  export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
  if pip_in /tmp/sds-site .gpucarry/sdscripts/*.whl && mkdir -p /tmp/sd-scripts \
     && tar -xzf .gpucarry/sd-scripts.tar.gz -C /tmp/sd-scripts; then
    export DANLU_SDSCRIPTS=/tmp/sd-scripts DANLU_SDSCRIPTS_SITE=/tmp/sds-site
  else
    echo "sd-scripts not set up: the comparison section measures Danlu only"
  fi
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
elif [ "${DANLU_GPU_DRYRUN:-0}" = "0" ]; then  # every section would fail on its imports: stop before spending them
  echo "no .gpucarry/ here: run bench/gpu_carry.sh first and name .gpucarry in run's carry (bench/README.md)"
  exit 3
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
exec "$PY" bench/gpu_session.py "$@"
