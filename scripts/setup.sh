#!/usr/bin/env bash
# npm run setup: install what slotgate's tests and `npm start` need, and check it runs.
# Idempotent and fast when everything is present: npm packages (npm ci when a lockfile exists and
# node_modules is missing or older than it), Redis 7 (redis-server, redis-cli; via apt-get or
# brew), promtool (Debian's prometheus package) and nutcracker (twemproxy), optional, via apt-get,
# and the bun and deno binaries that ship as npm packages.
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

# Optional tools: tests that need one skip that part, saying so, when it is missing, so failing to
# install one is no reason to fail. `optional COMMAND APT_PACKAGE BREW_PACKAGE WHAT_SKIPS`.
optional() {
  local command=$1 package=$2 formula=$3 skips=$4
  command -v "$command" >/dev/null 2>&1 && return 0
  if [ "$(uname -s)" = Linux ] && command -v apt-get >/dev/null 2>&1; then
    local sudo=()
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo=(sudo); fi
    if [ "$(id -u)" -ne 0 ] && [ ${#sudo[@]} -eq 0 ]; then
      say "$command missing and not root: run 'apt-get install $package' as root ($skips until then)"
      return 0
    fi
    say "installing $package (for $command) with apt-get"
    "${sudo[@]}" apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$package" >/dev/null ||
      say "could not install $package: $skips"
  else
    say "$command not found: $skips (macOS: brew install $formula)"
  fi
}
# promtool (Debian's prometheus package) checks the /metrics exposition in the integration tests.
optional promtool prometheus prometheus "the metrics test skips its promtool check"
# nutcracker (twemproxy): --from-twemproxy's test checks keys land where twemproxy puts them.
optional nutcracker nutcracker twemproxy "the twemproxy migration test skips"

REDIS_VERSION=$(redis-server --version | sed -n 's/.* v=\([0-9.]*\).*/\1/p')
BUN_VERSION=$(node_modules/.bin/bun --version)
DENO_VERSION=$(node_modules/.bin/deno --version | head -n 1)
PROMTOOL=$(command -v promtool >/dev/null 2>&1 && promtool --version 2>&1 | head -n 1 | awk '{print $3}' || echo "missing")
NUTCRACKER=$(command -v nutcracker >/dev/null 2>&1 && nutcracker --version 2>&1 | awk '{print $NF}' | sed 's/^nutcracker-//' || echo "missing")
say "ready: node $(node --version), bun $BUN_VERSION, $DENO_VERSION, redis $REDIS_VERSION, promtool $PROMTOOL, nutcracker $NUTCRACKER"
