#!/usr/bin/env bash
# One Cloud TPU VM (a single host, e.g. v5litepod-8 or v4-8): create it, copy and install
# d2ljax, check the devices, train, fetch the run directory, delete the VM.
#
#   PROJECT=my-project ZONE=us-west4-a bash tpu/vm_single_host.sh resnet18 --epochs 10
#
# Set KEEP=1 to keep the VM (and delete it later with `gcloud compute tpus tpu-vm delete`).
set -euo pipefail

EXPERIMENT="${1:-resnet18}"
shift || true
TPU_NAME="${TPU_NAME:-d2ljax-tpu}"
ZONE="${ZONE:-us-west4-a}"
ACCELERATOR_TYPE="${ACCELERATOR_TYPE:-v5litepod-8}"
VERSION="${VERSION:-v2-alpha-tpuv5-lite}"
PROJECT="${PROJECT:-$(gcloud config get-value project 2>/dev/null)}"
RUN="${EXPERIMENT//[:\/]/-}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TPU=(gcloud compute tpus tpu-vm --project "${PROJECT}" --zone "${ZONE}")
TRAIN_ARGS=$(printf ' %q' "$@")

# 1. create the VM.
"${TPU[@]}" create "${TPU_NAME}" --accelerator-type "${ACCELERATOR_TYPE}" --version "${VERSION}"
cleanup() {
  if [[ "${KEEP:-0}" != 1 ]]; then "${TPU[@]}" delete "${TPU_NAME}" --quiet; fi
}
trap cleanup EXIT

# 2. copy this checkout (tracked files) and install JAX for TPU and d2ljax.
git -C "${HERE}" archive --format=tar.gz -o /tmp/d2ljax.tar.gz HEAD
"${TPU[@]}" scp /tmp/d2ljax.tar.gz "${TPU_NAME}:~/d2ljax.tar.gz"
"${TPU[@]}" ssh "${TPU_NAME}" --command "mkdir -p d2ljax && tar -xzf d2ljax.tar.gz -C d2ljax \
  && pip install -q -U 'jax[tpu]' && pip install -q -e ./d2ljax"

# 3. check the devices, then train (one host: data parallel over its chips, nothing to set up).
"${TPU[@]}" ssh "${TPU_NAME}" --command "cd d2ljax && python tpu/check_devices.py \
  && d2ljax train ${EXPERIMENT} --workdir runs/${RUN} --no-progress${TRAIN_ARGS}"

# 4. collect the run (metrics.json, curves.png, checkpoints/).
mkdir -p runs
"${TPU[@]}" scp --recurse "${TPU_NAME}:~/d2ljax/runs/${RUN}" "runs/"
echo "run directory: runs/${RUN}"
