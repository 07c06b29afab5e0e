#!/usr/bin/env bash
# Runs the GPU tests and the benchmark on the GPU machine (the device tool), from the repository root, after
#   mvn -B -pl cuda-ops install -DskipTests && ../shared/gpu/stage.sh cuda-ops
# with .gpu, cuda-ops/target/classes and cuda-ops/target/test-classes carried. Writes device.txt, gpu-tests.log,
# condjl.jsonl and torch.jsonl (plus their stderr) to $OUT (or ./gpu-out). Extra arguments go to CoorDescentBench
# (e.g. --sweep).
# The staged runtime lacks java.desktop, which log4j-core needs: log4j-core and its SLF4J bridge stay off the class
# path and log4j-api's simple logger prints INFO and above to stderr.
set -uo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv | tee "$out/device.txt"
jars=$(ls .gpu/lib/*.jar | grep -v -e log4j-core -e log4j-slf4j | tr '\n' ':')
cp=cuda-ops/target/classes:cuda-ops/target/test-classes:$jars
java=(.gpu/jre/bin/java -Dai.djl.offline=true -Dlog4j2.simplelogLevel=INFO -Dlog4j2.simplelogShowDateTime=false)
"${java[@]}" -jar .gpu/junit.jar execute --class-path "$cp" --select-package dev.condjl.cuda --include-tag gpu \
  --details=tree --disable-ansi-colors > "$out/gpu-tests.log" 2>&1
echo "gpu tests exit $?"
grep -E "tests (successful|failed|skipped)|max \|cuda|✘" "$out/gpu-tests.log" | cut -c1-200 | tail -n 45
"${java[@]}" -cp "$cp" dev.condjl.cuda.bench.CoorDescentBench --device gpu "$@" \
  > "$out/condjl.jsonl" 2> "$out/condjl.err"
echo "condjl bench exit $?"
if [ -n "${NCU_CASE:-}" ]; then  # e.g. NCU_CASE=64x8192: Nsight Compute sections of one forward launch
  timeout 240 ncu --target-processes all --kernel-name regex:forward --launch-skip 3 --launch-count 1 \
    --section SpeedOfLight --section WarpStateStats --section LaunchStats --section ComputeWorkloadAnalysis \
    "${java[@]}" -cp "$cp" dev.condjl.cuda.bench.CoorDescentBench --device gpu --case "$NCU_CASE" --reps 10 \
    > "$out/ncu.txt" 2>&1
  echo "ncu exit $?"
fi
PYTHONUNBUFFERED=1 python3 cuda-ops/bench/torch_baseline.py > "$out/torch.jsonl" 2> "$out/torch.err"
echo "torch baseline exit $?"
tail -n 3 "$out/condjl.err" "$out/torch.err"
cut -c1-200 "$out/condjl.jsonl" "$out/torch.jsonl"
