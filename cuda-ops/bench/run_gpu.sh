#!/usr/bin/env bash
# Runs the GPU tests and the benchmark on the GPU machine (the device tool), from the repository root, after
#   mvn -B -pl cuda-ops install -DskipTests && ../shared/gpu/stage.sh cuda-ops
# with .gpu and cuda-ops/target carried. Writes gpu-tests.log, condjl.jsonl and torch.jsonl to $OUT (or ./gpu-out).
# Extra arguments go to CoorDescentBench (e.g. --sweep).
set -uo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv | tee "$out/device.txt"
bash .gpu/run-tests.sh --select-package dev.condjl.cuda --include-tag gpu --details=tree \
  > "$out/gpu-tests.log" 2>&1
echo "gpu tests exit $?"
grep -E "tests (successful|failed|skipped)|max \|cuda" "$out/gpu-tests.log" | tail -n 40
cp=cuda-ops/target/classes:$(ls .gpu/lib/*.jar | tr '\n' ':')
.gpu/jre/bin/java -Dai.djl.offline=true -cp "$cp" dev.condjl.cuda.bench.CoorDescentBench --device gpu "$@" \
  > "$out/condjl.jsonl" 2> "$out/condjl.err"
echo "condjl bench exit $?"
PYTHONUNBUFFERED=1 python3 cuda-ops/bench/torch_baseline.py > "$out/torch.jsonl" 2> "$out/torch.err"
echo "torch baseline exit $?"
tail -n 3 "$out/condjl.err" "$out/torch.err"
cat "$out/condjl.jsonl" "$out/torch.jsonl" | cut -c1-230
