#!/usr/bin/env bash
# condjl on the GPU machine: every module's tests, the main job (default run, seeds 1-10, a 5,000-step memory run)
# and the routed-block benchmark, with DJL's PyTorch engine on gpu(0). Writes the results to $OUT/h200.md (commit
# it as integration-tests/gpu/h200.md) and each run's log beside it.
#
# Here, from the project root:   mvn -B install -DskipTests && ../shared/gpu/stage.sh
# There (device tool, carry .gpu): bash integration-tests/gpu/run.sh [PHASE...]
# Phases: tests, seeds, speed, memory, bench (eager, then replays of a CUDA graph) (default: all). Each call fits the device tool's 10 minutes when given
# two phases at most; results of several calls are merged by concatenating their h200.md sections.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/condjl-gpu}
# once, before anything runs in parallel: the unpacking and the font install are not safe to race
source .gpu/setup.sh
mkdir -p "$OUT/logs"
RESULTS=$OUT/h200.md
phases=("$@")
[ ${#phases[@]} -gt 0 ] || phases=(tests seeds speed memory bench)
SEEDS=${SEEDS:-"1 2 3 4 5 6 7 8 9 10"}
# the seed runs share the GPU (and this machine's cores); "speed" times the default run alone
PARALLEL=${PARALLEL:-5}
TRAIN_ARGS=${TRAIN_ARGS:-}
train() { .gpu/java dev.condjl.integration.cli.Condjl train --devices gpu --no-progress --out /tmp/condjl-runs "$@"; }
field() { grep -m1 "$1" "$2" | sed "s/^$1 *//"; }
# the report's routing line of a layer, without the routed fractions: "kv: value 100%, kv: key 100%, q: query 100%"
layer() { field "routing $1" "$2" | grep -oE 'kv: value [0-9]+%, kv: key [0-9]+%, q: query [0-9]+%'; }

tests() {
  echo "## Module test suites (JUnit, DJL default device gpu(0))" >> "$RESULTS"
  echo "| module | tests | successful | failed | aborted (assumption: not for this machine) |" >> "$RESULTS"
  echo "| --- | --- | --- | --- | --- |" >> "$RESULTS"
  local m
  for m in cuda-ops djl-topk djl-colt5 djl-stochastic djl-dropout integration-tests; do
    # only the module's own classes: a scanned class path would also run the tests in cuda-ops' test jar
    bash .gpu/run-tests.sh "$m" --scan-class-path target/test-classes --details=summary > "$OUT/logs/tests-$m.log" 2>&1 &
  done
  wait
  for m in cuda-ops djl-topk djl-colt5 djl-stochastic djl-dropout integration-tests; do
    local l=$OUT/logs/tests-$m.log
    n() { grep -E "tests $1" "$l" | grep -oE '[0-9]+' | head -1; }
    echo "| $m | $(n found) | $(n successful) | $(n failed) | $(n aborted) |" >> "$RESULTS"
    grep -E "MethodSource|=> " "$l" | head -20 | sed 's/^/    /' >> "$OUT/logs/failures.txt"
  done
}

seeds() {
  echo "## condjl train --devices gpu ${TRAIN_ARGS}(defaults otherwise), by seed, $PARALLEL runs at a time" >> "$RESULTS"
  echo "| seed | validation accuracy | ms/step (shared GPU) | first layer | second layer |" >> "$RESULTS"
  echo "| --- | --- | --- | --- | --- |" >> "$RESULTS"
  echo $SEEDS | tr ' ' '\n' | xargs -P "$PARALLEL" -I{} bash -c \
    ".gpu/java dev.condjl.integration.cli.Condjl train --devices gpu --no-progress --run-dir /tmp/condjl-runs/seed{}-\$\$ --seed {} $TRAIN_ARGS > $OUT/logs/train-seed{}.log 2>&1"
  local s l
  for s in $SEEDS; do
    l=$OUT/logs/train-seed$s.log
    echo "| $s | $(field accuracy "$l" | cut -d' ' -f1) | $(field training "$l" | grep -oE '[0-9]+ ms/step' | head -1) | $(layer L0 "$l") | $(layer L1 "$l") |" >> "$RESULTS"
  done
}

speed() {
  echo "## condjl train --devices gpu ${TRAIN_ARGS}(defaults otherwise), alone on the GPU" >> "$RESULTS"
  train $TRAIN_ARGS > "$OUT/logs/train-default.log" 2>&1
  { echo '```'; sed -n '/^task /,/^peak memory/p' "$OUT/logs/train-default.log"; echo '```'; } >> "$RESULTS"
}

memory() {
  local steps=${MEMORY_STEPS:-5000}
  echo "## GPU memory over $steps steps (default model otherwise, seed 42, alone on the GPU)" >> "$RESULTS"
  train --steps "$steps" --gpu-memory-every $((steps / 10)) --eval-every 1000 $TRAIN_ARGS \
    > "$OUT/logs/train-memory.log" 2>&1
  local l=$OUT/logs/train-memory.log
  { echo '```'; grep -E "MiB of GPU memory in use|^gpu memory|^accuracy|^training" "$l"; echo '```'; } >> "$RESULTS"
}

bench() {
  local mode
  for mode in eager cuda-graph; do
    local flag=
    [ "$mode" = cuda-graph ] && flag=--cuda-graph
    echo "## condjl bench colt5 $flag (forward+backward, batch 1, dim 256, 8 heads, window 128, n/8 routed)" >> "$RESULTS"
    { echo '```'; .gpu/java dev.condjl.integration.cli.Condjl bench colt5 --device gpu $flag \
        --seq "${BENCH_SEQ:-1024,2048,4096,16384,65536}" --reps 10 2>&1 | tee "$OUT/logs/bench-colt5-$mode.log" \
        | grep -v " INFO "; echo '```'; } >> "$RESULTS"
  done
}

{ echo "# condjl on $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader), torch $(python3 -c 'import torch;print(torch.__version__)')"; echo; } >> "$RESULTS"
for p in "${phases[@]}"; do
  case $p in tests|seeds|speed|memory|bench) "$p"; echo >> "$RESULTS" ;; *) echo "unknown phase $p" >&2; exit 2 ;; esac
done
cat "$RESULTS"
