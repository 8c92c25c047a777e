#!/usr/bin/env bash
# Rehearse a multi-host run on one machine: N processes on 127.0.0.1, each with D simulated CPU
# devices (gloo collectives between processes). Same command as on a pod, with the coordinator
# given explicitly instead of found from the TPU environment.
#
#   bash tpu/multiprocess_localhost.sh mlp:smoke        # 2 processes x 2 devices
set -euo pipefail

EXPERIMENT="${1:-mlp:smoke}"
shift || true
NUM_PROCESSES="${NUM_PROCESSES:-2}"
DEVICES="${DEVICES:-2}"
PORT="${PORT:-12355}"
RUN="${EXPERIMENT//[:\/]/-}"
export JAX_PLATFORMS=cpu XLA_FLAGS="--xla_force_host_platform_device_count=${DEVICES}"

pids=()
for ((i = 0; i < NUM_PROCESSES; i++)); do
  d2ljax train "${EXPERIMENT}" --coordinator "127.0.0.1:${PORT}" \
    --num-processes "${NUM_PROCESSES}" --process-id "${i}" \
    --workdir "runs/${RUN}-multiprocess" --overwrite --no-progress "$@" &
  pids+=("$!")
done
status=0
for pid in "${pids[@]}"; do wait "${pid}" || status=$?; done
exit "${status}"
