#!/usr/bin/env bash
# Colab TPU runtime (Runtime > Change runtime type > TPU): install, check the devices, train.
#
#   !git clone https://github.com/OWNER/d2ljax && cd d2ljax && bash tpu/colab.sh lenet
#
# or, from a checkout already on the runtime: `!bash tpu/colab.sh EXPERIMENT [d2ljax train args]`.
# A Colab TPU is one host, so there is nothing to initialise: `d2ljax train` trains data parallel
# over all its TPU cores, exactly as it trains on one CPU.
set -euo pipefail

EXPERIMENT="${1:-lenet}"
shift || true
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# 1. install: JAX for TPU (libtpu), then d2ljax from this checkout.
pip install -q -U "jax[tpu]"
pip install -q -e "${HERE}"

# 2. check the devices: expect platform tpu and 4 or 8 cores.
python "${HERE}/tpu/check_devices.py"

# 3. run an experiment with the same CLI as everywhere else.
d2ljax train "${EXPERIMENT}" --workdir "runs/${EXPERIMENT//[:\/]/-}" --no-progress "$@"
