#!/bin/sh
# The GPU check of the throughput issue, as one call on a lent GPU machine, which has
# torch but neither PyAV, Ray nor the model wheels. Prepare it here with
# `make device-prep` (decoded inputs in .devdata/, wheels for Python 3.12 in .whl/), then:
#   device run: command "sh bench/device.sh", carry [".whl", ".devdata"], timeout_s 420
# Each model stage against its bare model at the same batch on CUDA (bf16 autocast,
# channels_last, pinned host copies): the CNN at three batch sizes, the audio encoder,
# fusion and TransNetV2 beside it. The JSON of each comes back under $OUT.
# A dry run of the script itself, on a CPU here:
#   PYTHON=.venv/bin/python DEVICE=cpu FRAMES=16 SHOT_FRAMES=100 REPEAT=1 sh bench/device.sh
set -eu
py="${PYTHON:-python3}"
device="${DEVICE:-cuda}"
out="${OUT:-/tmp/device-out}"
"$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$py" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)"
for batch in 8 64 256; do
  echo "== visual.batch_size $batch"
  "$py" -m bench.encoders --data .devdata/encoders.npz --device "$device" --batch "$batch" \
    --frames "${FRAMES:-256}" --shot-frames "${SHOT_FRAMES:-100000}" --repeat "${REPEAT:-20}"
  cp "bench/results/encoders-$device.json" "$out/encoders-$device-batch$batch.json"
done
