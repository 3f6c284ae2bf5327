#!/usr/bin/env bash
# Native memory check: builds an AddressSanitizer + LeakSanitizer copy of minedraft's native modules (every target of
# binding.gyp: minedraft.node and minedraft_synth.node) into a separate folder (never build/Release), then runs the
# native tests and a leak driver against them through MINEDRAFT_ADDON_PATH / MINEDRAFT_SYNTH_ADDON_PATH,
# and reports memory errors (any) and leaks whose allocation stack goes through the addon (cpp/).
#
#   npm run check:asan                 # or: bash scripts/asan-check.sh
#   ASAN_DIR=/tmp/x bash scripts/asan-check.sh --no-build   # reuse an earlier build
#   bash scripts/asan-check.sh --tests "test/native test/reliability/native-misuse.test.ts"
#   bash scripts/asan-check.sh --report-only        # classify the logs of the last run again
#   ASAN_SRC_ROOT=/tmp/patched ASAN_DIR=/tmp/asan-patched bash scripts/asan-check.sh   # a patched copy of cpp/
#
# Compiler: g++ with GCC's libasan (Debian: g++, libasan8); clang++ with compiler-rt (clang, libclang-rt-14-dev)
# is used when CXX=clang++. Missing packages are installed with apt-get when running as root.
# Exit: 0 = no ASan error and no leak in the addon's code; 1 = errors or addon leaks found; 2 = could not run.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ASAN_DIR="${ASAN_DIR:-/tmp/minedraft-asan}"
# the folder holding cpp/ to build (default: this checkout); set it to validate a patched copy of cpp/
ASAN_SRC_ROOT="${ASAN_SRC_ROOT:-$ROOT}"
CXX="${CXX:-g++}"
BUILD=1
REPORT_ONLY=0
TESTS="test/native test/reliability/native-misuse.test.ts"
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --report-only) REPORT_ONLY=1; BUILD=0 ;;
    --tests) TESTS="$2"; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "asan-check: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
cd "$ROOT"
NICE="nice -n 19"   # a good neighbour on a shared machine

need_pkg() { # need_pkg COMMAND-OR-FILE PACKAGE...
  if [ -e "$1" ] || command -v "$1" >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "asan-check: installing ${*:2}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${@:2}" >/dev/null \
      || { apt-get update >/dev/null \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${@:2}" >/dev/null; }
  fi
  [ -e "$1" ] || command -v "$1" >/dev/null 2>&1 || { echo "asan-check: $1 is missing (install ${*:2})" >&2; exit 2; }
}

if [ "$CXX" = clang++ ]; then
  need_pkg clang++ clang
  RT="$(clang++ -print-file-name=libclang_rt.asan-x86_64.so)"
  need_pkg "$RT" libclang-rt-14-dev
else
  need_pkg g++ g++
  RT="$($CXX -print-file-name=libasan.so)"
  [ -e "$RT" ] || need_pkg /usr/lib/x86_64-linux-gnu/libasan.so.8 libasan8
  RT="$(readlink -f "$($CXX -print-file-name=libasan.so)")"
fi
[ -e "$RT" ] || { echo "asan-check: no ASan runtime found for $CXX" >&2; exit 2; }
command -v llvm-symbolizer >/dev/null 2>&1 && export ASAN_SYMBOLIZER_PATH="$(command -v llvm-symbolizer)"

mkdir -p "$ASAN_DIR"
ADDON="$ASAN_DIR/minedraft.node"
SYNTH_ADDON="$ASAN_DIR/minedraft_synth.node"
if [ "$BUILD" = 1 ]; then
  LIBDIR="$(node src/native/llama-paths.mjs libdir)"
  LIBS="$(node src/native/llama-paths.mjs libs)"
  INCS="$(node src/native/llama-paths.mjs include)"
  NAPI_INC="$(node -p "require('node-addon-api').include_dir")"
  NODE_INC="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")/include/node"
  [ -e "$NODE_INC/node_api.h" ] \
    || NODE_INC="$(ls -d "$HOME"/.cache/node-gyp/"$(node -p process.versions.node)"/include/node 2>/dev/null | head -1)"
  [ -e "$NODE_INC/node_api.h" ] || { echo "asan-check: Node's headers (node_api.h) not found" >&2; exit 2; }
  # Every target of binding.gyp (the addon minedraft and the generator minedraft_synth), with its sources and
  # defines (target_defaults merged in), read from binding.gyp itself so this build cannot drift from it:
  # one line per target, "NAME<TAB>DEFINES<TAB>SOURCES".
  TARGETS="$(node -e '
    const g = JSON.parse(require("fs").readFileSync("binding.gyp", "utf8").replace(/#.*$/gm, ""));
    const d = g.target_defaults ?? {};
    for (const t of g.targets) {
      const defs = [...(d.defines ?? []), ...(t.defines ?? [])].map((x) => "-D" + x).join(" ");
      console.log([t.target_name, defs, [...(d.sources ?? []), ...t.sources].join(" ")].join("\t"));
    }')" || exit 2
  while IFS=$'\t' read -r NAME DEFS SOURCES; do
    echo "asan-check: building $ASAN_DIR/$NAME.node with $CXX -fsanitize=address"
    mkdir -p "$ASAN_DIR/obj/$NAME"
    OBJS=""
    for src in $SOURCES; do
      obj="$ASAN_DIR/obj/$NAME/$(echo "${src%.cc}" | tr '/' '_').o"
      # shellcheck disable=SC2086
      $NICE "$CXX" -c "$ASAN_SRC_ROOT/$src" -o "$obj" -std=c++17 -fPIC -pthread -g -O1 -fno-omit-frame-pointer \
        -fsanitize=address -fexceptions -Wall -Wno-unused-parameter $DEFS -DBUILDING_NODE_EXTENSION \
        -DNODE_GYP_MODULE_NAME="$NAME" -I"$NODE_INC" -I"$NAPI_INC" $(for i in $INCS; do printf -- '-I%s ' "$i"; done) \
        || exit 2
      OBJS="$OBJS $obj"
    done
    # shellcheck disable=SC2086
    $NICE "$CXX" -shared -fsanitize=address -o "$ASAN_DIR/$NAME.node" $OBJS $LIBS -Wl,-rpath,"$LIBDIR" -pthread \
      || exit 2
  done <<< "$TARGETS"
fi
for f in "$ADDON" "$SYNTH_ADDON"; do
  [ -e "$f" ] || { echo "asan-check: $f is missing (run without --no-build)" >&2; exit 2; }
done

LOGS="$ASAN_DIR/logs"
if [ "$REPORT_ONLY" = 0 ]; then
  rm -rf "$LOGS"
  mkdir -p "$LOGS"
  # No suppressions: a suppression matches any frame of a stack, and every allocation the addon makes on the JS
  # thread has Node / V8 frames below it. Leaks are classified by the report parser at the end instead.
  : > "$ASAN_DIR/lsan.supp"
  # halt on the first memory error (exit code 1, "ERROR: AddressSanitizer" in the log); leaks are reported at exit
  # without changing the exit code (LSAN exitcode=0), so the tests' own results stay readable
  export ASAN_OPTIONS="detect_leaks=1:log_path=$LOGS/asan:alloc_dealloc_mismatch=0:new_delete_type_mismatch=0:\
detect_odr_violation=0:allow_user_segv_handler=1:handle_segv=0:handle_sigbus=0:handle_abort=1:symbolize=1:\
fast_unwind_on_malloc=0:malloc_context_size=40"
  export LSAN_OPTIONS="suppressions=$ASAN_DIR/lsan.supp:print_suppressions=0:exitcode=0"
  export MINEDRAFT_ADDON_PATH="$ADDON"
  export MINEDRAFT_SYNTH_ADDON_PATH="$SYNTH_ADDON"
  export MINEDRAFT_ASAN=1

  echo "asan-check: running $TESTS under ASan (LD_PRELOAD=$RT)"
  # node directly (not npx): LD_PRELOAD reaches only node processes; the timing tests are left out (ASan is ~10x slower)
  # shellcheck disable=SC2086
  LD_PRELOAD="$RT" $NICE node node_modules/vitest/vitest.mjs run $TESTS --testTimeout 600000 --hookTimeout 600000 \
    -t '^(?!.*(run concurrently|timer keeps firing)).*$' > "$ASAN_DIR/vitest.log" 2>&1
  echo $? > "$ASAN_DIR/vitest.rc"
  tail -n 8 "$ASAN_DIR/vitest.log"

  echo "asan-check: running the leak driver (scripts/asan-leak-driver.mjs)," \
    "which exits normally so LeakSanitizer reports"
  LD_PRELOAD="$RT" $NICE node --expose-gc scripts/asan-leak-driver.mjs > "$ASAN_DIR/driver.log" 2>&1
  echo $? > "$ASAN_DIR/driver.rc"
  tail -n 3 "$ASAN_DIR/driver.log"
fi
VITEST_RC="$(cat "$ASAN_DIR/vitest.rc" 2>/dev/null || echo missing)"
DRIVER_RC="$(cat "$ASAN_DIR/driver.rc" 2>/dev/null || echo missing)"

node - "$LOGS" "$VITEST_RC" "$DRIVER_RC" <<'EOF'
const fs = require("fs");
const path = require("path");
const [dir, vitestRc, driverRc] = process.argv.slice(2);
const files = fs.readdirSync(dir).map((f) => path.join(dir, f));
let errors = [];
let addonLeaks = [];
let otherLeaks = { reports: 0, bytes: 0 };
const pendingFinalization = { reports: 0, bytes: 0 };
const pendingPerLog = new Map();
let processes = files.length;
// the addon's frames: either module, or a source under cpp/ (cpp/model.cc, cpp/context/worker.cc, ...)
const OURS = /minedraft(_synth)?\.node|(^|[\s/(])cpp\/([A-Za-z_]+\/)*[A-Za-z_]+\.(cc|h)\b/;
const ours = (stack) => new RegExp(OURS.source, "m").test(stack);
for (const f of files) {
  const text = fs.readFileSync(f, "utf8");
  for (const m of text.matchAll(/==\d+==ERROR: AddressSanitizer: [^\n]*\n[\s\S]*?(?=\n==\d+==|\nSUMMARY|$)/g))
    errors.push(`${path.basename(f)}: ${m[0].slice(0, 3000)}`);
  for (const m of text.matchAll(
    /(Direct|Indirect) leak of (\d+) byte\(s\) in (\d+) object\(s\) allocated from:\n([\s\S]*?)(?=\n\n|$)/g,
  )) {
    const [, kind, bytes, , stack] = m;
    // Node's wrappers of GC-managed values (an External, a wrapped object) are freed by a second-pass finalizer
    // after the value is collected; one collected just before exit shows up unreachable. They are listed apart,
    // up to 2 per process: a real per-call leak (like an unsettled napi_deferred, which no GC frees) is not in it.
    const gcManaged = /#1 0x[0-9a-f]+ in (napi_create_external|napi_wrap|napi_add_finalizer)\b/.test(stack);
    if (ours(stack) && gcManaged && (pendingPerLog.get(f) ?? 0) < 2) {
      pendingPerLog.set(f, (pendingPerLog.get(f) ?? 0) + 1);
      pendingFinalization.reports++;
      pendingFinalization.bytes += Number(bytes);
    } else if (ours(stack))
      addonLeaks.push({ kind, bytes: Number(bytes), stack: stack.split("\n").slice(0, 14).join("\n") });
    else {
      otherLeaks.reports++;
      otherLeaks.bytes += Number(bytes);
    }
  }
}
const direct = addonLeaks.filter((l) => l.kind === "Direct");
console.log(`asan-check: ${processes} process log(s); vitest exit ${vitestRc}, leak driver exit ${driverRc}`);
console.log(`asan-check: AddressSanitizer errors: ${errors.length}`);
for (const e of errors) console.log(e);
console.log(
  `asan-check: leaks through the addon (cpp/): ${direct.length} direct, ` +
    `${addonLeaks.length - direct.length} indirect`,
);
// grouped by the first addon frame (where the addon made the allocation that was never freed)
const groups = new Map();
for (const l of addonLeaks) {
  const frame = (l.stack.split("\n").find((x) => OURS.test(x)) ?? "?").replace(/^\s*#\d+ 0x[0-9a-f]+ in /, "");
  const g = groups.get(frame) ?? { kind: l.kind, reports: 0, bytes: 0, stack: l.stack };
  g.reports++;
  g.bytes += l.bytes;
  groups.set(frame, g);
}
for (const [frame, g] of groups)
  console.log(
    `--- ${g.kind} leaks: ${g.reports} report(s), ${g.bytes} bytes, first addon frame: ${frame}\n` +
      `${g.stack.split("\n").slice(0, 8).join("\n")}`,
  );
console.log(
  "asan-check: N-API wrappers of values collected just before exit, not yet finalized " +
    `(not counted, at most 2 per process): ${pendingFinalization.reports} report(s), ` +
    `${pendingFinalization.bytes} bytes`,
);
console.log(
  "asan-check: leaks outside the addon (Node, V8, libc at exit; not counted): " +
    `${otherLeaks.reports} report(s), ${otherLeaks.bytes} bytes`,
);
const ok = errors.length === 0 && direct.length === 0 && Number(driverRc) === 0;
console.log(ok ? "asan-check: PASS (zero errors, no definite leaks in the addon's code)" : "asan-check: FAIL");
process.exit(ok ? 0 : 1);
EOF
