#!/usr/bin/env bash
# GPU check for a lent GPU machine (see the device tool's README), or a CPU dry run here.
#
#   bash scripts/gpu-check.sh prepare        # here: pack what the device machine lacks into .gpu-check/ (< 64 MiB)
#   bash scripts/gpu-check.sh run [--cpu]    # there (or here with --cpu): build, make models, bench
#
# The device machine has CUDA, CMake and a compiler but no Node.js, no npm registry and no network, so
# `prepare` packs a Node.js binary and its headers, the llama.cpp source (from node-llama-cpp's bundle),
# the compiled TypeScript (dist/) and the two runtime npm packages. `run` builds llama.cpp for sm_90 only
# (CUDA) or for the CPU (--cpu), compiles the addon with g++ against it, makes a synthetic pair big enough
# to matter (target ~1.1B parameters, 1-layer draft ~0.1 of its cost), and benchmarks ar / sd / psd with
# the target on the GPU and the draft (a) on the same GPU, (b) on the CPU cores. Bench JSON goes to $OUT
# (or ./gpu-check-out). Device call: carry [".gpu-check"], command `bash scripts/gpu-check.sh run`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
pack="$root/.gpu-check"
cmd=${1:-}
shift || true

prepare() {
  [ -f dist/index.js ] || { echo "build first: npm run build" >&2; exit 1; }
  node -e "import('./scripts/build-addon.mjs').then(m=>m.extractLlamaSource())"
  rm -rf "$pack" && mkdir -p "$pack"
  echo "packing node $(node -v)"
  xz -T0 -6 -c "$(command -v node)" > "$pack/node.xz"
  local nodeinc; nodeinc=$(dirname "$(dirname "$(command -v node)")")/include/node
  tar -C "$(dirname "$nodeinc")" -cJf "$pack/node-include.tar.xz" node
  echo "packing llama.cpp source"
  tar -C deps -cJf "$pack/llama.cpp.tar.xz" --exclude=llama.cpp/.git --exclude=llama.cpp/models --exclude=llama.cpp/docs \
    --exclude=llama.cpp/tools --exclude=llama.cpp/examples --exclude=llama.cpp/tests --exclude=llama.cpp/media \
    --exclude=llama.cpp/gguf-py --exclude=llama.cpp/app --exclude=llama.cpp/benches llama.cpp
  mkdir -p "$pack/vocab" && cp deps/llama.cpp/models/ggml-vocab-llama-spm.gguf "$pack/vocab/"
  tar -cJf "$pack/app.tar.xz" dist scripts cpp package.json node_modules/commander node_modules/node-addon-api
  du -sh "$pack"; ls -la "$pack"
  local bytes; bytes=$(du -sb "$pack" | cut -f1)
  [ "$bytes" -lt $((60 * 1024 * 1024)) ] || { echo "pack is over 60 MiB" >&2; exit 1; }
}

run() {
  local gpu=cuda
  [ "${1:-}" = "--cpu" ] && gpu=cpu
  local out=${OUT:-$root/gpu-check-out}
  mkdir -p "$out"
  local work=/tmp/minedraft-gpu-check
  rm -rf "$work" && mkdir -p "$work/bin"
  if [ -f "$pack/node.xz" ]; then
    xz -dc "$pack/node.xz" > "$work/bin/node" && chmod +x "$work/bin/node"
    tar -C "$work" -xJf "$pack/node-include.tar.xz"
    export PATH="$work/bin:$PATH"
    local nodeinc="$work/node"
    [ -d deps/llama.cpp/ggml ] || { mkdir -p deps && tar -C deps -xJf "$pack/llama.cpp.tar.xz"; }
    [ -f dist/index.js ] && [ -d node_modules/node-addon-api ] || tar -xJf "$pack/app.tar.xz"
    export MINEDRAFT_VOCAB_DIR="$pack/vocab"
  else
    local nodeinc; nodeinc=$(dirname "$(dirname "$(command -v node)")")/include/node
    node -e "import('./scripts/build-addon.mjs').then(m=>m.extractLlamaSource())"
  fi
  echo "== $(date -u +%FT%TZ) $(uname -m) $(nproc) cores; node $(node -v); gpu=$gpu" | tee "$out/gpu-check.log"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$out/gpu-check.log" || true

  local flags=(-DCMAKE_BUILD_TYPE=Release)
  [ "$gpu" = cuda ] && flags+=(-DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90)
  local t0=$SECONDS
  cmake -S . -B build-source/cmake-direct "${flags[@]}" > "$out/cmake-configure.log" 2>&1 || { tail -30 "$out/cmake-configure.log"; exit 1; }
  cmake --build build-source/cmake-direct -j "$(nproc)" > "$out/cmake-build.log" 2>&1 || { tail -40 "$out/cmake-build.log"; exit 1; }
  echo "llama.cpp ($gpu) built in $((SECONDS - t0)) s" | tee -a "$out/gpu-check.log"

  # The addon, compiled directly (no node-gyp/npm there), linked against build-source/lib.
  t0=$SECONDS
  mkdir -p build/Release
  g++ -shared -fPIC -O2 -std=c++17 -fexceptions -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS -DNODE_ADDON_API_DISABLE_DEPRECATED \
    -I "$nodeinc" -I node_modules/node-addon-api -I deps/llama.cpp/include -I deps/llama.cpp/ggml/include \
    cpp/*.cc -L build-source/lib -lllama -lggml -lggml-base -Wl,-rpath,"$root/build-source/lib" -o build/Release/minedraft.node
  echo "addon built in $((SECONDS - t0)) s" | tee -a "$out/gpu-check.log"
  node dist/cli/main.js inspect --devices | tee -a "$out/gpu-check.log"

  local models="$work/models"
  node dist/cli/main.js synth --out "$models" --preset tinyllama | tee -a "$out/gpu-check.log"
  local bench=(node dist/cli/main.js bench --model "$models/target.gguf" --draft "$models/draft.gguf" --modes ar,sd,psd
    --batch-size "${BATCH:-8}" -k 4 --max-tokens "${TOKENS:-64}" --repeat "${REPEAT:-1}")
  if [ "$gpu" = cuda ]; then
    local dev; dev=$(node -e "import('./dist/index.js').then(async m=>{const d=(await m.devices()).find(x=>x.type==='gpu');console.log(d?d.name:'')})")
    [ -n "$dev" ] || { echo "no GPU device found by the CUDA backend" | tee -a "$out/gpu-check.log"; exit 1; }
    echo "== (a) target and draft on $dev" | tee -a "$out/gpu-check.log"
    "${bench[@]}" --device "$dev" --gpu-layers -1 --draft-device "$dev" --draft-gpu-layers -1 --json "$out/bench-same-gpu.json" | tee -a "$out/gpu-check.log"
    echo "== (b) target on $dev, draft on the CPU cores" | tee -a "$out/gpu-check.log"
    "${bench[@]}" --device "$dev" --gpu-layers -1 --draft-device cpu --threads 1 --draft-threads "$(( $(nproc) - 1 ))" \
      --json "$out/bench-draft-cpu.json" | tee -a "$out/gpu-check.log"
  else
    echo "== dry run on the CPU" | tee -a "$out/gpu-check.log"
    "${bench[@]}" --json "$out/bench-cpu-dry-run.json" | tee -a "$out/gpu-check.log"
  fi
  echo "== done; results in $out" | tee -a "$out/gpu-check.log"
}

case "$cmd" in
  prepare) prepare ;;
  run) run "$@" ;;
  *) echo "usage: scripts/gpu-check.sh prepare | run [--cpu]" >&2; exit 2 ;;
esac
