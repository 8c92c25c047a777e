#!/usr/bin/env bash
# A multi-host Cloud TPU pod slice (e.g. v4-32: 4 hosts x 4 chips): create it, copy and install
# d2ljax on every worker, run the same `d2ljax train` on every worker, collect the checkpoints,
# delete the slice.
#
#   PROJECT=my-project ZONE=us-central2-b BUCKET=my-bucket bash tpu/pod.sh resnet18 --epochs 10
#
# Every worker runs the identical command with --distributed: jax.distributed finds the other
# workers from the TPU environment, the mesh spans all chips of all hosts, each host feeds its
# own rows of every batch, and only process 0 prints and writes metrics. Checkpoints are written
# by all hosts together, so the workdir must be storage they share: a GCS bucket mounted with
# gcsfuse at the same path on every worker.
set -euo pipefail

EXPERIMENT="${1:-resnet18}"
shift || true
TPU_NAME="${TPU_NAME:-d2ljax-pod}"
ZONE="${ZONE:-us-central2-b}"
ACCELERATOR_TYPE="${ACCELERATOR_TYPE:-v4-32}"
VERSION="${VERSION:-tpu-ubuntu2204-base}"
PROJECT="${PROJECT:-$(gcloud config get-value project 2>/dev/null)}"
BUCKET="${BUCKET:?set BUCKET to a GCS bucket the TPU service account can write}"
RUN="${EXPERIMENT//[:\/]/-}"
MOUNT=/mnt/d2ljax
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TPU=(gcloud compute tpus tpu-vm --project "${PROJECT}" --zone "${ZONE}")
TRAIN_ARGS=$(printf ' %q' "$@")

# 1. create the slice.
"${TPU[@]}" create "${TPU_NAME}" --accelerator-type "${ACCELERATOR_TYPE}" --version "${VERSION}"
cleanup() {
  if [[ "${KEEP:-0}" != 1 ]]; then "${TPU[@]}" delete "${TPU_NAME}" --quiet; fi
}
trap cleanup EXIT

# 2. copy this checkout to every worker; install JAX for TPU, d2ljax and gcsfuse; mount the bucket.
git -C "${HERE}" archive --format=tar.gz -o /tmp/d2ljax.tar.gz HEAD
"${TPU[@]}" scp /tmp/d2ljax.tar.gz "${TPU_NAME}:~/d2ljax.tar.gz" --worker=all
"${TPU[@]}" ssh "${TPU_NAME}" --worker=all --command "set -e; mkdir -p d2ljax \
  && tar -xzf d2ljax.tar.gz -C d2ljax \
  && pip install -q -U 'jax[tpu]' && pip install -q -e ./d2ljax \
  && (command -v gcsfuse || (sudo apt-get update -q && sudo apt-get install -y -q gcsfuse)) \
  && sudo mkdir -p ${MOUNT} && sudo chown \$USER ${MOUNT} \
  && (mountpoint -q ${MOUNT} || gcsfuse --implicit-dirs ${BUCKET} ${MOUNT})"

# 3. check the devices on every host, then the same training command on every worker at once.
"${TPU[@]}" ssh "${TPU_NAME}" --worker=all --command "cd d2ljax && python tpu/check_devices.py"
"${TPU[@]}" ssh "${TPU_NAME}" --worker=all --command "cd d2ljax && d2ljax train ${EXPERIMENT} \
  --distributed --workdir ${MOUNT}/runs/${RUN} --no-progress${TRAIN_ARGS}"

# 4. collect: checkpoints and metrics are in the bucket; copy them here too.
mkdir -p runs
gcloud storage cp --recursive "gs://${BUCKET}/runs/${RUN}" "runs/"
echo "run directory: runs/${RUN} (and gs://${BUCKET}/runs/${RUN})"
