#!/usr/bin/env bash
# What the test suite needs beyond Python packages, made available if it is missing:
# PostgreSQL at 127.0.0.1:5432 (server tests run on it, and fail rather than skip without it),
# Redis at 127.0.0.1:6379 (the shared rate-limit tests, which fail rather than skip too)
# and Debian's Chromium (the dashboard's browser test; Playwright never downloads a browser).
set -uo pipefail

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && break; sleep 1; done
  pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null || echo "warning: PostgreSQL is not reachable at 127.0.0.1:5432; the server tests will fail" >&2
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  if command -v redis-server >/dev/null 2>&1; then
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  fi
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
  redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || echo "warning: Redis is not reachable at 127.0.0.1:6379; the shared rate-limit tests will fail" >&2
fi

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else
    echo "warning: chromium is not installed (apt-get install chromium); the browser test will fail" >&2
  fi
fi
exit 0
