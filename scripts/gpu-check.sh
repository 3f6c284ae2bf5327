#!/usr/bin/env bash
# GPU check for a lent GPU machine (see the device tool's README), or a CPU dry run here.
#
#   bash scripts/gpu-check.sh prepare        # here: pack what the device machine lacks into .gpu-check/ (< 64 MiB)
#   bash scripts/gpu-check.sh run [--cpu]    # there (or here with --cpu): build, make models, bench
#   PLAN=kv bash scripts/gpu-check.sh run    # there: per-sequence against unified KV, graph splits
#   PLAN=auto bash scripts/gpu-check.sh run  # there: step-overhead, then auto against ar / sd / psd at each placement,
#                                            # and one sampled run
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
  tar -C deps -cJf "$pack/llama.cpp.tar.xz" --exclude=llama.cpp/.git --exclude=llama.cpp/models \
    --exclude=llama.cpp/docs --exclude=llama.cpp/tools --exclude=llama.cpp/examples --exclude=llama.cpp/tests \
    --exclude=llama.cpp/media --exclude=llama.cpp/gguf-py --exclude=llama.cpp/app --exclude=llama.cpp/benches llama.cpp
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
  mkdir -p "$work/bin"  # models made by an earlier call on the same machine are kept
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
  local models="$work/models"
  make_models() {
    local t0=$SECONDS
    node dist/cli/main.js synth --out "$models" --preset tinyllama > "$work/synth.log" 2>&1 \
      || { cat "$work/synth.log"; return 1; }
    echo "models made in $((SECONDS - t0)) s: $(ls -s --block-size=M "$models" | tr '\n' ' ')" \
      | tee -a "$out/gpu-check.log"
  }
  echo "== $(date -u +%FT%TZ) $(uname -m) $(nproc) cores; node $(node -v); gpu=$gpu" | tee "$out/gpu-check.log"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv \
    | tee -a "$out/gpu-check.log" || true

  # llama.cpp: configure + build in a new process session, so that a device call that runs out of time
  # leaves it building, and the next call (same warm machine) waits for it instead of starting over.
  # FlashAttention kernels are left out (GGML_CUDA_FA=OFF): they are most of the CUDA compile time and
  # llama.cpp falls back to its plain attention path without them.
  local flags=(-DCMAKE_BUILD_TYPE=Release)
  command -v ninja >/dev/null && flags+=(-G Ninja)
  [ "$gpu" = cuda ] && flags+=(-DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_CUDA_FA=OFF)
  local bdir=build-source/cmake-direct stamp="build-source/built-$gpu" blog="$root/build-source/build-$gpu.log"
  mkdir -p build-source
  if [ -f "$stamp" ]; then
    echo "llama.cpp ($gpu) already built" | tee -a "$out/gpu-check.log"
  else
    local t0=$SECONDS
    if ! { [ -f build-source/build.pid ] && kill -0 "$(cat build-source/build.pid)" 2>/dev/null; }; then
      setsid -w bash -c "cmake -S . -B $bdir ${flags[*]} && cmake --build $bdir -j $(nproc) && touch $stamp" \
        > "$blog" 2>&1 < /dev/null &
      echo $! > build-source/build.pid
    fi
    while kill -0 "$(cat build-source/build.pid)" 2>/dev/null; do
      sleep 10
      echo "  building ($((SECONDS - t0)) s): $(grep -o '\[[0-9]*/[0-9]*\]' "$blog" | tail -1)"
    done
    [ -f "$stamp" ] || { tail -40 "$blog"; cp "$blog" "$out/"; exit 1; }
    echo "llama.cpp ($gpu) built in $((SECONDS - t0)) s" | tee -a "$out/gpu-check.log"
  fi
  # The addon, compiled directly (no node-gyp/npm there), linked against build-source/lib.
  local t0=$SECONDS
  mkdir -p build/Release
  local cxx=(g++ -fPIC -O2 -std=c++17 -fexceptions -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS
    -DNODE_ADDON_API_CPP_EXCEPTIONS_ALL -DNODE_ADDON_API_DISABLE_DEPRECATED
    -I "$nodeinc" -I node_modules/node-addon-api -I deps/llama.cpp/include -I deps/llama.cpp/ggml/include)
  # every target of binding.gyp (minedraft, minedraft_synth) with its own sources, read from binding.gyp
  local targets name srcs objs pids f
  targets="$(node -e '
    const g = JSON.parse(require("fs").readFileSync("binding.gyp", "utf8"));
    for (const t of g.targets) console.log(t.target_name + "\t" + t.sources.join(" "));')"
  while IFS=$'\t' read -r name srcs; do
    objs=() pids=()
    mkdir -p "build/Release/obj/$name"
    for f in $srcs; do
      objs+=("build/Release/obj/$name/$(echo "${f%.cc}" | tr '/' '_').o")
      "${cxx[@]}" -DNODE_GYP_MODULE_NAME="$name" -c "$f" -o "${objs[-1]}" & pids+=($!)
    done
    for f in "${pids[@]}"; do wait "$f"; done
    g++ -shared "${objs[@]}" -L build-source/lib -lllama -lggml -lggml-base -Wl,-rpath,"$root/build-source/lib" \
      -o "build/Release/$name.node"
  done <<< "$targets"
  echo "addon built in $((SECONDS - t0)) s" | tee -a "$out/gpu-check.log"
  node dist/cli/main.js inspect --devices | tee -a "$out/gpu-check.log"
  # The synthetic pair needs the addon (its writer is native); a finished pair from an earlier call is kept.
  [ -f "$models/done" ] || { make_models && touch "$models/done"; }

  local modes=${MODES:-ar,sd,psd,auto}
  local bench=(node dist/cli/main.js bench --model "$models/target.gguf" --draft "$models/draft.gguf" -k 4
    --max-tokens "${TOKENS:-96}" --repeat "${REPEAT:-2}" --interleave)
  # Each run is allowed to fail without stopping the others; optional runs start only before DEADLINE s.
  bench_run() {
    local name=$1; shift
    echo "== ($((SECONDS)) s) $name" | tee -a "$out/gpu-check.log"
    "${bench[@]}" "$@" --json "$out/bench-$name.json" 2>&1 | tee -a "$out/gpu-check.log" \
      || echo "FAILED: $name" | tee -a "$out/gpu-check.log"
  }
  local deadline=${DEADLINE:-450}
  if [ "$gpu" = cuda ] && [ "${PLAN:-placements}" = kv ]; then
    # KV layout on the GPU: one KV stream per sequence (default) against one unified buffer, and
    # llama.cpp's graph splits (a split > 1 per layer means ops fell back to the CPU).
    local dev; dev=$(node -e "import('./dist/index.js').then(async m=>{\
const d=(await m.devices()).find(x=>x.type==='gpu');console.log(d?d.name:'')})")
    local cpu=$(( $(nproc) - 2 ))
    for kv in per-seq unified; do
      local flag=(--no-kv-unified); [ $kv = unified ] && flag=(--kv-unified)
      "${bench[@]}" --modes ar --batch-size 8 --max-tokens 4 --repeat 1 --device "$dev" --gpu-layers -1 "${flag[@]}" \
        --log-level info > "$out/splits-$kv.log" 2>&1 || true
      echo "$kv: $(grep -m3 -o 'graph splits = [0-9]*\|graph nodes *= [0-9]*' "$out/splits-$kv.log" | tr '\n' ' ')" \
        | tee -a "$out/gpu-check.log"
    done
    bench_run same-gpu-b8-per-seq --modes ar,sd,psd --batch-size 8 --device "$dev" --gpu-layers -1 \
      --draft-device "$dev" --draft-gpu-layers -1 --no-kv-unified
    bench_run same-gpu-b8-unified --modes ar,sd,psd --batch-size 8 --device "$dev" --gpu-layers -1 \
      --draft-device "$dev" --draft-gpu-layers -1 --kv-unified
    [ $SECONDS -lt "$deadline" ] && bench_run draft-cpu-b8-unified --modes sd,psd --batch-size 8 --device "$dev" \
      --gpu-layers -1 --draft-device cpu --threads 2 --draft-threads "$cpu" --kv-unified
    [ $SECONDS -lt "$deadline" ] && bench_run draft-cpu-b8-per-seq --modes sd,psd --batch-size 8 --device "$dev" \
      --gpu-layers -1 --draft-device cpu --threads 2 --draft-threads "$cpu" --no-kv-unified
  elif [ "$gpu" = cuda ] && [ "${PLAN:-placements}" = auto ]; then
    # auto against every fixed mode at each placement, on the GPU's default KV layout (unified)
    local dev; dev=$(node -e "import('./dist/index.js').then(async m=>{\
const d=(await m.devices()).find(x=>x.type==='gpu');console.log(d?d.name:'')})")
    [ -n "$dev" ] || { echo "no GPU device found by the CUDA backend" | tee -a "$out/gpu-check.log"; exit 1; }
    local cpu=$(( $(nproc) - 2 ))
    # orchestration on short GPU steps: one request, ar and sd at the default placement, the worker
    # sleeping between jobs against spinning (docs/performance.md "Orchestration overhead and short steps"), ~30 s
    echo "== ($((SECONDS)) s) step-overhead" | tee -a "$out/gpu-check.log"
    node scripts/step-overhead.mjs --model "$models/target.gguf" --draft "$models/draft.gguf" --tokens 96 --rounds 3 \
      --json "$out/step-overhead.json" 2>&1 | tee -a "$out/gpu-check.log" \
      || echo "FAILED: step-overhead" | tee -a "$out/gpu-check.log"
    bench_run same-gpu-b8 --modes ar,sd,psd,auto --batch-size 8 --device "$dev" --gpu-layers -1 --draft-device "$dev" \
      --draft-gpu-layers -1
    bench_run draft-cpu-b8 --modes ar,sd,psd,auto --batch-size 8 --device "$dev" --gpu-layers -1 --draft-device cpu \
      --threads 2 --draft-threads "$cpu"
    bench_run same-gpu-b1 --modes ar,sd,psd,auto --batch-size 1 --device "$dev" --gpu-layers -1 --draft-device "$dev" \
      --draft-gpu-layers -1
    # sampled rows on GPU steps: their CPU math after each decode, spread over the free cores (5.10)
    bench_run same-gpu-b8-top-p --modes ar,sd,psd --batch-size 8 --temp 1 --top-p 0.95 --device "$dev" --gpu-layers -1 \
      --draft-device "$dev" --draft-gpu-layers -1
    [ $SECONDS -lt "$deadline" ] && bench_run default-placement-b8 --modes ar,sd,psd,auto --batch-size 8
    [ $SECONDS -lt "$deadline" ] && bench_run same-gpu-b16 --modes ar,sd,psd,auto --batch-size 16 --device "$dev" \
      --gpu-layers -1 --draft-device "$dev" --draft-gpu-layers -1
    [ $SECONDS -lt "$deadline" ] && bench_run draft-cpu-b1 --modes ar,sd,psd,auto --batch-size 1 --device "$dev" \
      --gpu-layers -1 --draft-device cpu --threads 2 --draft-threads "$cpu"
  elif [ "$gpu" = cuda ]; then
    local dev; dev=$(node -e "import('./dist/index.js').then(async m=>{\
const d=(await m.devices()).find(x=>x.type==='gpu');console.log(d?d.name:'')})")
    [ -n "$dev" ] || { echo "no GPU device found by the CUDA backend" | tee -a "$out/gpu-check.log"; exit 1; }
    local cpu=$(( $(nproc) - 2 ))
    bench_run draft-cpu-b8 --modes "$modes" --batch-size 8 --device "$dev" --gpu-layers -1 --draft-device cpu \
      --threads 2 --draft-threads "$cpu"
    bench_run same-gpu-b8 --modes "$modes" --batch-size 8 --device "$dev" --gpu-layers -1 --draft-device "$dev" \
      --draft-gpu-layers -1
    [ $SECONDS -lt "$deadline" ] && bench_run draft-cpu-b1 --modes "$modes" --batch-size 1 --device "$dev" \
      --gpu-layers -1 --draft-device cpu --threads 2 --draft-threads "$cpu"
    [ $SECONDS -lt "$deadline" ] && bench_run same-gpu-b1 --modes "$modes" --batch-size 1 --device "$dev" \
      --gpu-layers -1 --draft-device "$dev" --draft-gpu-layers -1
    # The default placement (no device flags): target on the GPU, draft on the CPU cores for psd/auto.
    [ $SECONDS -lt "$deadline" ] && bench_run default-placement-b8 --modes psd,auto --batch-size 8 --repeat 1
    # Greedy agreement on CUDA: 8 prompts x 64 tokens per mode and batch size; compare on a CPU machine
    # with scripts/greedy-divergence.mjs (docs/performance.md "GPU: one H200").
    printf '%s\n' "The history of the printing press" "Write a function that sorts a list" \
      "Explain photosynthesis to a child" "The best way to learn a language is" "In 1905, Albert Einstein" \
      "Once upon a time in a small village" "def fibonacci(n):" "The three laws of motion are" \
      > "$work/greedy-prompts.txt"
    local g; mkdir -p "$work/greedy"
    for g in ar:1 ar:8 sd:1 psd:4:gpu psd:4:cpu; do
      IFS=: read -r mode b draftdev <<< "$g"
      local on=(--draft-device "$dev" --draft-gpu-layers -1); [ "$draftdev" = cpu ] && on=(--draft-device cpu)
      node dist/cli/main.js generate --model "$models/target.gguf" --draft "$models/draft.gguf" --mode "$mode" \
        --prompts "$work/greedy-prompts.txt" --max-tokens 64 --temp 0 --batch-size "$b" --device "$dev" \
        --gpu-layers -1 "${on[@]}" --json > "$work/greedy/$mode-b$b${draftdev:+-draft-$draftdev}.json" \
        || echo "FAILED: greedy $g" | tee -a "$out/gpu-check.log"
    done
    tar -C "$work" -czf "$out/greedy.tar.gz" greedy  # one file: a device call returns at most 8
  else
    bench_run cpu-dry-run --modes "$modes" --batch-size "${BATCH:-4}"
  fi
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw \
    --format=csv | tee -a "$out/gpu-check.log" || true
  echo "== done; results in $out" | tee -a "$out/gpu-check.log"
}

case "$cmd" in
  prepare) prepare ;;
  run) run "$@" ;;
  *) echo "usage: scripts/gpu-check.sh prepare | run [--cpu]" >&2; exit 2 ;;
esac
