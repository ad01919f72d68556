#!/usr/bin/env bash
# npm run setup: install what slotgate's tests and `npm start` need, and check it runs.
# Idempotent and fast when everything is present: npm packages (npm ci when a lockfile exists and
# node_modules is missing or older than it), Redis 7 (redis-server, redis-cli; via apt-get or
# brew), promtool (Debian's prometheus package, via apt-get), and the bun and deno binaries that
# ship as npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "setup: $*"; }

# npm: skip when node_modules is newer than the lockfile (npm itself records installs there).
if [ -f package-lock.json ]; then
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    say "npm ci"
    npm ci --no-audit --no-fund
  fi
else
  say "npm install"
  npm install --no-audit --no-fund
fi

# Redis 7 for the local test clusters.
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  if [ "$(uname -s)" = Linux ] && command -v apt-get >/dev/null 2>&1; then
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
      command -v sudo >/dev/null 2>&1 || { echo "setup: redis-server missing and not root: run 'apt-get install redis-server redis-tools' as root" >&2; exit 1; }
      SUDO=(sudo)
    fi
    say "installing redis-server redis-tools with apt-get"
    "${SUDO[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq redis-server redis-tools >/dev/null
  elif [ "$(uname -s)" = Darwin ] && command -v brew >/dev/null 2>&1; then
    say "installing redis with brew"
    brew install redis
  else
    echo "setup: redis-server/redis-cli not found: install Redis 7 (Debian/Ubuntu: apt-get install redis-server redis-tools; macOS: brew install redis)" >&2
    exit 1
  fi
fi

# promtool (Debian's prometheus package) checks the /metrics exposition in the integration tests;
# they skip that check, saying so, when it is missing. Not installing it is no reason to fail.
if ! command -v promtool >/dev/null 2>&1; then
  if [ "$(uname -s)" = Linux ] && command -v apt-get >/dev/null 2>&1; then
    SUDO=()
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=(sudo); fi
    if [ "$(id -u)" -ne 0 ] && [ ${#SUDO[@]} -eq 0 ]; then
      say "promtool missing and not root: run 'apt-get install prometheus' as root (the metrics test skips its promtool check until then)"
    else
      say "installing prometheus (for promtool) with apt-get"
      "${SUDO[@]}" apt-get update -qq
      DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    fi
  else
    say "promtool not found: the metrics test skips its promtool check (macOS: brew install prometheus)"
  fi
fi

REDIS_VERSION=$(redis-server --version | sed -n 's/.* v=\([0-9.]*\).*/\1/p')
BUN_VERSION=$(node_modules/.bin/bun --version)
DENO_VERSION=$(node_modules/.bin/deno --version | head -n 1)
PROMTOOL=$(command -v promtool >/dev/null 2>&1 && promtool --version 2>&1 | head -n 1 | awk '{print $3}' || echo "missing")
say "ready: node $(node --version), bun $BUN_VERSION, $DENO_VERSION, redis $REDIS_VERSION, promtool $PROMTOOL"
