#!/usr/bin/env bash
# What the test suite needs besides Python packages: a running PostgreSQL, and
# Debian's prometheus (metric gate tests), chromium and npm (web UI tests). Starts
# or installs what is missing; safe to run again.
set -euo pipefail

pg_host=${INTERLOCK_TEST_PG_HOST:-127.0.0.1}
pg_port=${INTERLOCK_TEST_PG_PORT:-5432}
if ! pg_isready -h "$pg_host" -p "$pg_port" -q 2>/dev/null; then
  echo "PostgreSQL is not answering on $pg_host:$pg_port; starting it"
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  fi
  for _ in $(seq 1 30); do
    pg_isready -h "$pg_host" -p "$pg_port" -q 2>/dev/null && break
    sleep 1
  done
  pg_isready -h "$pg_host" -p "$pg_port" -q || { echo "PostgreSQL did not start" >&2; exit 1; }
fi

missing=()
command -v prometheus >/dev/null 2>&1 || [ -x /usr/bin/prometheus ] || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing+=(chromium)
# npm installs axe-core for the web UI's accessibility tests (tests/web/package.json)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
  # The tests run their own Prometheus on free ports; one the package may have
  # started as a service on :9090 does not disturb them.
fi
