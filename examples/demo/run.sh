#!/usr/bin/env bash
# `make run`: start Interlock on SQLite with the demo config, release api@1.0.0
# through dev → staging → production, and keep the server up to explore.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
interlock=${INTERLOCK:-interlock}
cd "$here"
export INTERLOCK_HOME="$here/.interlock"
export INTERLOCK_URL=${INTERLOCK_URL:-http://127.0.0.1:8520}
port=${INTERLOCK_URL##*:}

"$interlock" server --config interlock.yaml --port "$port" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null' EXIT INT TERM

for _ in $(seq 1 100); do
  if "$interlock" config show >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then echo "the server did not start" >&2; exit 1; fi
  sleep 0.1
done

version="$(date -u +%Y.%m.%d-%H%M%S)"
echo
echo "==> interlock release create api@$version --reason 'DEMO-1: first release'"
id=$("$interlock" release create "api@$version" --reason "DEMO-1: first release through Interlock")
echo "==> interlock release watch $id"
"$interlock" release watch "$id" || true
echo
echo "==> interlock status"
"$interlock" status
echo
cat <<TXT
Interlock is running at $INTERLOCK_URL (data in $INTERLOCK_HOME).
In another terminal, with INTERLOCK_HOME=$INTERLOCK_HOME, try:
  interlock release show $id        interlock release logs $id --step roll-out
  interlock audit log               interlock audit verify
  interlock release create api@2.0.0 --reason "DEMO-2" --watch
Web UI: $INTERLOCK_URL/ui/ (sign in with the token in $INTERLOCK_HOME/admin.token)
API docs: $INTERLOCK_URL/docs    Press Ctrl-C to stop.
TXT
wait "$server"
