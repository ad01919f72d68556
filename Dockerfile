# syntax=docker/dockerfile:1
# slotgate's container image. One build stage (Node: build, pack, install the packed package
# into an empty /app), then a small final stage on the runtime chosen by RUNTIME:
#
#   docker build -t slotgate .                        # Node (default)
#   docker build -t slotgate:bun --build-arg RUNTIME=bun .
#   docker build -t slotgate:deno --build-arg RUNTIME=deno .
#
# Every step is a subcommand of deploy/image/slotgate-image.sh, which
# test/integration/image-steps.test.ts runs outside a container: same commands.
# Configuration is by environment variables only (README: Configuration, Deploy). The image
# listens on 0.0.0.0, so protected mode applies: give it SLOTGATE_REQUIREPASS(_FILE) (or users)
# and, for the admin API on 0.0.0.0, SLOTGATE_ADMIN_TOKEN(_FILE), or it refuses to start.

ARG RUNTIME=node
ARG NODE_IMAGE=node:20-bookworm-slim
ARG BUN_IMAGE=oven/bun:1-slim
ARG DENO_IMAGE=denoland/deno:debian

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# Dependencies first: this layer is reused while package*.json do not change.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN sh deploy/image/slotgate-image.sh build /src /pack \
 && sh deploy/image/slotgate-image.sh install /pack/slotgate-*.tgz /app

# One final base per runtime; only the one RUNTIME names is built.
FROM ${NODE_IMAGE} AS runtime-node
ENV IMAGE_RUNTIME=node

FROM ${BUN_IMAGE} AS runtime-bun
ENV IMAGE_RUNTIME=bun

FROM ${DENO_IMAGE} AS runtime-deno
# Deno caches what it compiles; the root file system may be read-only, /tmp is not.
ENV IMAGE_RUNTIME=deno DENO_DIR=/tmp/deno-dir DENO_NO_UPDATE_CHECK=1

FROM runtime-${RUNTIME}
COPY --from=build /app /app
COPY --from=build /src/deploy/image/slotgate-image.sh /usr/local/bin/slotgate-image.sh
WORKDIR /app
ENV IMAGE_APP_DIR=/app \
    NODE_ENV=production \
    SLOTGATE_LISTEN=0.0.0.0:6380 \
    SLOTGATE_ADMIN_LISTEN=0.0.0.0:6390
# A numeric id no base image uses: nothing in /app is writable by it.
USER 10001:10001
EXPOSE 6380 6390
# /healthz needs no admin token, so this works with the image's defaults.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["sh", "/usr/local/bin/slotgate-image.sh", "health"]
STOPSIGNAL SIGTERM
# The script execs the runtime: it is PID 1 and receives SIGTERM itself.
ENTRYPOINT ["sh", "/usr/local/bin/slotgate-image.sh", "run"]
