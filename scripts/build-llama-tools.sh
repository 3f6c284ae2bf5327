#!/usr/bin/env bash
# Builds llama.cpp's own reference tools (llama-batched-bench, llama-speculative-simple, llama-server) from the
# source bundle node-llama-cpp ships, once, into .cache/llama-tools (not part of CI: ~10 min on 2
# cores, more with llama-server). scripts/incumbents.mjs and `minedraft bench serve --incumbents`
# compare minedraft against them on the same models.
#
#   bash scripts/build-llama-tools.sh [--native|--generic]
#     --native  (default) GGML_NATIVE, tuned for this CPU
#     --generic the CPU backend variants node-llama-cpp's prebuilt binaries use (loaded at run time)
set -euo pipefail
cd "$(dirname "$0")/.."
variant=native
[ "${1:-}" = --generic ] && variant=generic
out=.cache/llama-tools
build="$out/build-$variant"
if [ ! -f deps/llama.cpp/CMakeLists.txt ]; then
  node -e "import('./scripts/build-addon.mjs').then(m=>m.extractLlamaSource())"
fi
flags=(-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_TOOLS=ON)
if [ "$variant" = native ]; then flags+=(-DGGML_NATIVE=ON); \
else flags+=(-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DBUILD_SHARED_LIBS=ON); fi
mkdir -p "$out"
t0=$SECONDS
cmake -S deps/llama.cpp -B "$build" "${flags[@]}" > "$out/configure-$variant.log" 2>&1 \
  || { tail -30 "$out/configure-$variant.log"; exit 1; }
cmake --build "$build" -j "$(nproc)" --target llama-batched-bench llama-speculative-simple llama-server \
  > "$out/build-$variant.log" 2>&1 || { tail -40 "$out/build-$variant.log"; exit 1; }
mkdir -p "$out/bin"
ln -sf "$(pwd)/$build/bin/llama-batched-bench" "$out/bin/llama-batched-bench"
ln -sf "$(pwd)/$build/bin/llama-speculative-simple" "$out/bin/llama-speculative-simple"
ln -sf "$(pwd)/$build/bin/llama-server" "$out/bin/llama-server"
git -C deps/llama.cpp rev-parse --short HEAD 2>/dev/null > "$out/bin/VERSION" || echo unknown > "$out/bin/VERSION"
echo "built llama-batched-bench, llama-speculative-simple and llama-server ($variant) in $((SECONDS - t0)) s: $out/bin"
