#!/usr/bin/env bash
# The packaged phone model's training runs, as run on a lent GPU machine
# (see MODEL.md). Run from the repository root with .devcarry/ holding:
#   espeakng_loader-0.2.4-*.whl                 (pip download espeakng-loader==0.2.4)
#   flitelib/   libflite.so.1 libflite_cmulex.so.1 libflite_usenglish.so.1 libflite_cmu_us_awb.so.1
#               libflite_cmu_us_rms.so.1 libasound.so.2 (from Debian's libflite1 and libasound2; stage 2)
#   specs/                                      (scripts/train_phone_model.py plan ...)
#   init/                                       (stage 2: the stage-1 model)
# Usage: scripts/gpu_train_phone_model.sh OUT_DIR STAGE
set -euo pipefail
out=$1
stage=${2:-1}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .devcarry/*.whl
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
if [ "$stage" = 1 ]; then
    python3 scripts/train_phone_model.py train .devcarry/specs "$out" --budget 420 --jobs 14 --threads 2 \
        --device cuda --dev 150 --min-items 2000 --batch-seconds 600 --lr 1.5e-3 --warmup 300 --eval-every 30
else
    export ALIGNER_FLITE_LIB_DIR=$PWD/.devcarry/flitelib
    export LD_LIBRARY_PATH=$PWD/.devcarry/flitelib:${LD_LIBRARY_PATH:-}
    python3 -c "from aligner.training.synth.flite import synthesize; print('flite ok', len(synthesize('hello world', 'rms').samples))"
    python3 scripts/train_phone_model.py train .devcarry/specs "$out" --init .devcarry/init --budget 230 \
        --jobs 14 --threads 2 --device cuda --dev 150 --min-items 3000 --flite 12000 --flite-copies 3 \
        --batch-seconds 600 --lr 6e-4 --warmup 150 --eval-every 30 --checkpoints 0.5
fi
