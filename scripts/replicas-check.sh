#!/usr/bin/env bash
# Two `minedraft serve` replicas behind nginx on loopback (the setup of docs/scaling.md#replicas), checked end to end
# by scripts/replicas-check.mjs: a burst is spread over both replicas with greedy output equal to `ar`'s; a replica
# SIGKILLed mid-burst fails only the streams it had open; a SIGTERMed replica answers /health 503 at once, finishes
# what it accepted (nginx retries its 503s on the other replica), exits 0, and gets traffic again once restarted.
# Prints a JSON summary; exit 0 = every check passed, 1 = a check failed, 2 = could not run.
#
#   npm run check:replicas             # or: bash scripts/replicas-check.sh [--requests 24] [--max-tokens 48]
#   NGINX=/path/to/nginx KEEP_TMP=1 bash scripts/replicas-check.sh    # another nginx; keep the logs and config
#
# Needs `npm run build` (dist/) and nginx (Debian: nginx-light or nginx); installs nothing. nginx runs as this user
# with its prefix, config, pid and logs in a temp folder (no system config is read or written). Everything listens on
# 127.0.0.1; every request has a client timeout and the whole run is bounded (6 minutes); child processes are ended
# by their pids on any exit.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
if [ ! -x "$NGINX" ]; then
  echo "replicas-check: nginx not found (looked for 'nginx' on PATH and /usr/sbin/nginx)." >&2
  echo "  Install it: apt-get install nginx-light   (or: apt-get install nginx), or set NGINX=/path/to/nginx" >&2
  exit 2
fi
if [ ! -f "$ROOT/dist/cli/main.js" ]; then
  echo "replicas-check: dist/cli/main.js is missing: run 'npm run build' (or 'npx tsc -p tsconfig.json') first" >&2
  exit 2
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/minedraft-replicas.XXXXXX")"
DRIVER=""
cleanup() {
  [ -n "$DRIVER" ] && kill -TERM "$DRIVER" 2>/dev/null && wait "$DRIVER" 2>/dev/null
  # the driver ends its children itself; this catches what a killed driver left (by pid, nothing broader)
  # (TERM first: nginx's master then ends its worker)
  if [ -f "$TMP/pids" ]; then
    local left=0
    while read -r pid; do
      [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && left=1
    done <"$TMP/pids"
    if [ "$left" = 1 ]; then
      sleep 1
      while read -r pid; do
        [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
      done <"$TMP/pids"
    fi
  fi
  if [ "${KEEP_TMP:-0}" = 1 ]; then echo "replicas-check: logs and config kept in $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

cd "$ROOT" || exit 2
# in the background so that a signal to this script runs its trap at once (timeout forwards the TERM to node)
REPLICAS_TMP="$TMP" NGINX="$NGINX" timeout -k 10 360 node scripts/replicas-check.mjs "$@" &
DRIVER=$!
wait "$DRIVER"
rc=$?
DRIVER=""
[ "$rc" = 124 ] && echo "replicas-check: ran past its 6-minute limit" >&2 && rc=1
exit "$rc"
