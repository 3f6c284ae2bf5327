#!/usr/bin/env bash
# npm run check:package: what a new user gets. Packs the package (prepack: tsc + the prebuilt binaries), installs
# the tarball into a fresh project under /tmp with a PATH holding only node, npm and sh (no compiler, make,
# python3 or git: the install must use the prebuilt addon), then runs the CLI (synth + a greedy generate with
# --chat on the tiny synthetic pair), require() and import smoke tests, and prints the sizes and times.
# KEEP=1 keeps the scratch folder. Needs the npm registry (the dependencies) and a built checkout's toolchain
# for prepack (g++, make, python3, git).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/minedraft-package-XXXXXX)
if [[ "${KEEP:-}" != 1 ]]; then trap 'rm -rf "$work"' EXIT; else echo "scratch folder: $work"; fi
t0=$SECONDS

echo "== npm pack (prepack: tsc + npm run prebuild)"
(cd "$root" && npm pack --pack-destination "$work" --silent >"$work/pack.out")
tgz="$work/$(tail -1 "$work/pack.out")"
t_pack=$((SECONDS - t0))
echo "packed $(basename "$tgz"): $(du -h "$tgz" | cut -f1) in ${t_pack}s"

# node, npm, npx and sh only: npm runs the install scripts with sh; nothing can compile
mkdir "$work/bin"
ln -s "$(command -v node)" "$work/bin/node"
ln -s "$(readlink -f "$(command -v npm)")" "$work/bin/npm"
ln -s "$(readlink -f "$(command -v npx)")" "$work/bin/npx"
ln -s "$(readlink -f /bin/sh)" "$work/bin/sh"
bare() { env -i HOME="$HOME" PATH="$work/bin" MINEDRAFT_CACHE="$work/cache" "$@"; }
for tool in g++ c++ make python3 git; do
  if bare sh -c "command -v $tool" >/dev/null; then echo "check-package: $tool is on the bare PATH" >&2; exit 1; fi
done

mkdir "$work/app"
cd "$work/app"
bare npm init -y >/dev/null
echo "== npm install ./$(basename "$tgz") (PATH: node, npm, npx, sh)"
t1=$SECONDS
bare npm install --no-audit --no-fund --foreground-scripts "$tgz" 2>&1 | tee "$work/install.log"
t_install=$((SECONDS - t1))
grep -q "using the prebuilt addon" "$work/install.log" ||
  { echo "check-package: the install did not use the prebuilt addon" >&2; exit 1; }
[[ ! -e node_modules/minedraft/build && ! -e node_modules/minedraft/deps ]] ||
  { echo "check-package: the install compiled something (build/ or deps/ exists)" >&2; exit 1; }
echo "installed in ${t_install}s"

echo "== ldd: the prebuilt modules find llama.cpp's libraries"
for f in node_modules/minedraft/prebuilds/*/*.node; do
  if ldd "$f" | grep "not found"; then echo "check-package: $f has unresolved libraries" >&2; exit 1; fi
  ldd "$f" | grep -E "libllama|libggml-base" | sed "s|$work/app/||"
done

echo "== npx minedraft synth + generate --chat (greedy) on the tiny synthetic pair"
bare npx --no-install minedraft synth --preset tiny --out "$work/pair" >/dev/null
bare npx --no-install minedraft generate --model "$work/pair/target.gguf" --draft "$work/pair/draft.gguf" \
  --prompt "Hello" --max-tokens 16 --temp 0 >"$work/gen.txt"
bare npx --no-install minedraft generate --model "$work/pair/target.gguf" --draft "$work/pair/draft.gguf" \
  --chat --prompt "Hello" --max-tokens 16 --temp 0 >"$work/chat.txt"
[[ -s "$work/gen.txt" && -s "$work/chat.txt" ]] || { echo "check-package: generate printed nothing" >&2; exit 1; }
echo "generate: $(wc -c <"$work/gen.txt") bytes, generate --chat: $(wc -c <"$work/chat.txt") bytes"

echo "== require() and import"
echo 'const m = require("minedraft"); if (typeof m.createEngine !== "function") process.exit(1); console.log("require ok")' >smoke.cjs
echo 'import { createEngine } from "minedraft"; if (typeof createEngine !== "function") process.exit(1); console.log("import ok")' >smoke.mjs
bare node smoke.cjs
bare node smoke.mjs

echo "== sizes"
echo "tarball: $(du -h "$tgz" | cut -f1), node_modules: $(du -sh node_modules | cut -f1), of which:"
du -sh node_modules/@node-llama-cpp/* node_modules/node-llama-cpp node_modules/minedraft 2>/dev/null | sed 's/^/  /'
echo "check:package passed in $((SECONDS - t0))s (pack ${t_pack}s, install ${t_install}s)"
