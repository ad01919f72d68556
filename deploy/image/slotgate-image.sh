#!/bin/sh
# The steps of slotgate's container image, as one script: the Dockerfile runs `build` and
# `install` in its build stage, `run` is the final image's ENTRYPOINT and `health` its
# HEALTHCHECK; test/integration/image-steps.test.ts runs the same subcommands outside a
# container, in an empty temp folder. POSIX sh: the final images are Debian slim ones.
#
# Usage: slotgate-image.sh build SRC_DIR PACK_DIR   npm run build, then npm pack into PACK_DIR
#        slotgate-image.sh install TARBALL APP_DIR  install the packed package into APP_DIR (empty or new)
#        slotgate-image.sh run [ARGS...]            exec slotgate from IMAGE_APP_DIR on IMAGE_RUNTIME
#        slotgate-image.sh health [PATH]            exit 0 when the admin API answers 2xx on PATH (/healthz)
# Env:   IMAGE_RUNTIME  node (default), bun or deno: the runtime `run` and `health` use
#        IMAGE_APP_DIR  the folder `install` filled (default /app)
# Not SLOTGATE_*: slotgate refuses SLOTGATE_ variables it does not know.
set -eu

die() {
  echo "slotgate-image: $*" >&2
  exit 2
}

runtime=${IMAGE_RUNTIME:-node}
app=${IMAGE_APP_DIR:-/app}
entry=node_modules/slotgate/bin/slotgate.mjs

case ${1:-} in
  build)
    [ $# -eq 3 ] || die "usage: build SRC_DIR PACK_DIR"
    mkdir -p "$3"
    pack=$(cd "$3" && pwd)
    cd "$2"
    npm run build
    npm pack --silent --pack-destination "$pack" >/dev/null
    ;;
  install)
    [ $# -eq 3 ] || die "usage: install TARBALL APP_DIR"
    [ -f "$2" ] || die "no tarball at $2"
    tarball=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
    mkdir -p "$3"
    [ -z "$(ls -A "$3")" ] || die "$3 is not empty"
    cd "$3"
    # A package.json of its own makes this folder npm's prefix (not some parent's).
    printf '{ "name": "slotgate-app", "private": true }\n' >package.json
    # --prefer-offline: what npm has cached is used as it is (a test machine), else fetched (a build).
    npm install --omit=dev --prefer-offline --no-audit --no-fund --no-update-notifier "$tarball"
    [ -f "$entry" ] || die "the package installed no $entry"
    ;;
  run)
    shift
    cd "$app"
    # exec: the runtime becomes PID 1 in the container and receives SIGTERM itself.
    case $runtime in
      node) exec node "$entry" "$@" ;;
      bun) exec bun "$entry" "$@" ;;
      # --unstable-net: Deno.listen({ reusePort }), which SLOTGATE_WORKERS needs.
      deno) exec deno run -A --unstable-net "$entry" "$@" ;;
      *) die "IMAGE_RUNTIME=$runtime: expected node, bun or deno" ;;
    esac
    ;;
  health)
    path=${2:-/healthz}
    admin=${SLOTGATE_ADMIN_LISTEN:-127.0.0.1:6390}
    [ "$admin" != off ] || die "SLOTGATE_ADMIN_LISTEN=off: no admin API to ask"
    port=${admin##*:}
    # A wildcard listener is reached on loopback; /healthz and /readyz need no token.
    host=${admin%:*}
    case $host in
      0.0.0.0 | "" | "[::]" | "::") host=127.0.0.1 ;;
    esac
    url="http://$host:$port$path"
    script="fetch('$url').then((r) => exit(r.ok ? 0 : 1), () => exit(1))"
    case $runtime in
      node | bun) exec "$runtime" -e "const exit = (c) => process.exit(c); $script" ;;
      deno) exec deno eval "const exit = (c) => Deno.exit(c); $script" ;;
      *) die "IMAGE_RUNTIME=$runtime: expected node, bun or deno" ;;
    esac
    ;;
  *)
    die "usage: slotgate-image.sh build|install|run|health (see the header of this script)"
    ;;
esac
