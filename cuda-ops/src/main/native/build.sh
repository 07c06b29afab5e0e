#!/usr/bin/env bash
# Builds libcondjl_ops.so into <classes dir>/native/lib/linux-x86_64/ (run by Maven in generate-resources).
# With nvcc: the CUDA kernels for sm_80, sm_90a and compute_90 PTX, CUDA runtime linked statically (the library
# then needs only the NVIDIA driver). Without nvcc (or with CONDJL_OPS_NVCC=none): a CPU-only build with g++.
# Objects live in <build dir> and are rebuilt only when a source, a header or this script changed.
# Usage: build.sh <classes dir> <build dir> <version>
set -euo pipefail
classes=$1
build=$2
version=$3
src=$(cd "$(dirname "$0")" && pwd)
log() { echo "[condjl-ops] $*"; }

if [ "$(uname -s)" != Linux ] || [ "$(uname -m)" != x86_64 ]; then
  log "no native build for $(uname -s)/$(uname -m): CondjlOps will report itself unavailable"
  exit 0
fi

java_home=${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")}
[ -f "$java_home/include/jni.h" ] || java_home=$(dirname "$java_home")
[ -f "$java_home/include/jni.h" ] || { log "jni.h not found under JAVA_HOME=$java_home"; exit 1; }

nvcc=${CONDJL_OPS_NVCC:-$(command -v nvcc || true)}
[ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc
[ "$nvcc" = none ] && nvcc=
flavor=cpu
[ -n "$nvcc" ] && flavor=cuda

mkdir -p "$build/$flavor" "$classes/native/lib/linux-x86_64"
out=$classes/native/lib/linux-x86_64/libcondjl_ops.so
# -fno-trapping-math (no FP exception flags are read; results are unchanged) lets GCC if-convert, and so vectorise,
# the clamps of the CPU kernels' exp: 5x faster loops.
cxxflags=(-std=c++17 -O3 -fPIC -fvisibility=hidden -fopenmp-simd -fno-trapping-math -Wall -Wextra
          -I"$java_home/include" -I"$java_home/include/linux")
deps=("$src"/*.h "$src"/*.cuh "$src/build.sh")

stale() {  # stale <object> <source>: the object is missing or older than the source, a header or this script
  [ -f "$1" ] || return 0
  local f
  for f in "$2" "${deps[@]}"; do [ "$f" -nt "$1" ] && return 0; done
  return 1
}

objects=()
pids=()
compile() {  # compile <object> <command...>, in the background when stale
  local obj=$1
  shift
  objects+=("$obj")
  if stale "$obj" "${@: -1}"; then
    "$@" -o "$obj" & pids+=($!)
  fi
}

sources=(coor_descent_cpu.cpp topk_by_input_cpu.cpp optim_cpu.cpp torch_shim.cpp cuda_graph.cpp jni_ops.cpp jni_graph.cpp)
if [ -n "$nvcc" ]; then
  log "building libcondjl_ops with $("$nvcc" --version | tail -n 2 | head -n 1) (sm_80, sm_90a, compute_90 PTX)"
  # No -use_fast_math or -ftz=true: the output scores keep their subnormals as torch.exp does (coor_descent_cuda.cu).
  nvcc_flags=(-std=c++17 -O3 -t 0 -Xcompiler -fPIC,-fvisibility=hidden -gencode arch=compute_80,code=sm_80
              -gencode arch=compute_90a,code=sm_90a -gencode arch=compute_90,code=compute_90)
  for s in coor_descent_cuda.cu topk_by_input_cuda.cu optim_cuda.cu stream_cuda.cu; do
    compile "$build/$flavor/${s%.cu}.o" "$nvcc" "${nvcc_flags[@]}" -c "$src/$s"
  done
else
  log "nvcc not found: building the CPU-only libcondjl_ops with g++ (its CUDA kernels will report unavailable)"
  sources+=(cuda_stub.cpp)
fi
for s in "${sources[@]}"; do
  compile "$build/$flavor/${s%.cpp}.o" g++ "${cxxflags[@]}" -c "$src/$s"
done
for p in "${pids[@]}"; do wait "$p"; done

if [ ${#pids[@]} -eq 0 ] && [ -f "$out" ] && [ "$(cat "$build/flavor" 2>/dev/null)" = "$flavor" ]; then
  log "libcondjl_ops ($flavor) is up to date"
else
  if [ -n "$nvcc" ]; then
    "$nvcc" -shared -cudart static -o "$out" "${objects[@]}" -ldl -lpthread -lrt
  else
    g++ -shared -o "$out" "${objects[@]}" -ldl -lpthread
  fi
  echo "$flavor" > "$build/flavor"
  log "built $out ($flavor)"
fi
cat > "$classes/native/lib/condjl_ops.properties" <<PROPS
version=$version
flavor=$flavor
PROPS
