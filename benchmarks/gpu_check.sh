#!/usr/bin/env bash
# One GPU session's checks in one go (about 7 minutes on an H100/H200): the benchmark table,
# 8 batched seeds against 1, the seed recipe end to end, and the test suite (on the host CPUs, as CI runs it).
#   bash benchmarks/gpu_check.sh            # results under $OUT (or ./gpu-check-out)
# Needs jax (CUDA), flax, optax, matplotlib, rich, torch; keras from .whl/ if present.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-check-out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
python3 -c "import jax, flax, optax; print('jax', jax.__version__, jax.devices(), 'flax', flax.__version__, 'optax', optax.__version__)" | tee -a "$out/gpu.txt"

# 1. Speed: all implementations, one run, same card.
KERAS_BACKEND=jax timeout 240 python3 benchmarks/run.py --dtype float32,bfloat16 --out "$out/bench.json" 2>&1 | tee "$out/bench.log"

# 1a. The authors' DCGAN networks at 64x64x3 beside PyTorch eager and torch.compile (issue 22).
timeout 200 python3 benchmarks/run.py --arch dcgan --size 64 --impl jax,torch,torch-compile --batch 64 \
  --iterations 100 --out "$out/bench-dcgan64.json" 2>&1 | grep -v '^{' | tee "$out/bench-dcgan64.log"

# 1b. Batched seeds (issue 6): 8 runs vmapped in one program against 1, seed networks, batch 64.
timeout 150 python3 benchmarks/seeds.py --out "$out/seeds.json" 2>&1 | grep -v '^{' | tee "$out/seeds.log"

# 2. The seed recipe end to end: process start to final sample grid, with one evaluation at the
#    end (fd_mnist), in float32 and in bfloat16 (issue 7: the bf16 path's effect on quality).
#    float32 runs twice with a compile cache: cold (compiling, filling it) then warm (loading it);
#    the difference is the compile time (issue 7 asks for it apart).
for run in float32 bfloat16 float32-warm; do
  start=$(date +%s%N)
  timeout 150 python3 train.py --workdir "$out/seed-$run" --compute-dtype ${run%-warm} --eval-every 4000 \
    $([ "${run%-warm}" = float32 ] && echo --compile-cache /tmp/wgan-compile-cache) \
    2>&1 | tail -3 | tee "$out/seed-$run.log"
  echo "seed recipe end to end ($run): $(( ($(date +%s%N) - start) / 1000000 )) ms" | tee -a "$out/seed-$run.log"
done

# 3. The test suite on the host CPUs (tests never use the GPU), beside any extra GPU command
#    given as arguments (e.g. python3 benchmarks/quick_sweep.py "$OUT/sweep").
if python3 -c "import xdist" 2>/dev/null; then par="-n 8"; else par=""; fi
timeout 200 python3 -m pytest -q $par -p no:cacheprovider tests > "$out/tests.log" 2>&1 &
tests=$!
if [ $# -gt 0 ]; then "$@" 2>&1 | tail -20; fi
wait $tests
tail -15 "$out/tests.log"
