#!/usr/bin/env bash
# GPU check of the memory pre-flight (run when a GPU worker is lent; ~1-2 min on an H100/H200):
# one SD 1.5-sized 512 px batch-2 LoRA step per preset - fp16 / bf16 / fp32, gradient
# checkpointing on / off, AdamW / AdamW 8-bit - each printing the measured
# torch.cuda.max_memory_allocated next to estimate_gpu_memory's figure.
# Results go to docs/benchmarks.md ("Memory pre-flight on a GPU").
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())" || exit 1
for precision in fp16 bf16 no; do
  for ckpt in "" "--no-checkpointing"; do
    for opt in adamw8bit adamw; do
      echo "== precision=$precision checkpointing=${ckpt:-on} optimizer=$opt"
      timeout 120 $PY bench/bench_sd15_memory.py --cuda --precision "$precision" $ckpt \
        --optimizer "$opt" 2>&1 | grep -E "^cuda|pre-flight|measured" || echo "FAILED ($?)"
    done
  done
done
