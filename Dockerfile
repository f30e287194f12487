# syntax=docker/dockerfile:1.7
#
# One Dockerfile for every casino binary. Build one image per service by target:
#
#   docker build --target vault        -t casino-vault .
#   docker build --target concierge    -t casino-concierge .
#   docker build --target room-service -t casino-room-service .
#   docker build --target casino       -t casino-cli .          # `casino probe chat --serve 0.0.0.0:9100`
#   (add --build-arg GIT_SHA=$(git rev-parse HEAD) --build-arg VERSION=<tag> for release images)
#
# All four targets share the `builder` stage, so building several of them compiles the workspace once.
# Requires BuildKit (Docker >= 23 uses it by default; docker-compose v1 needs DOCKER_BUILDKIT=1 and
# COMPOSE_DOCKER_CLI_BUILD=1).
#
# Dependency caching, without cargo-chef:
#   * the `skeleton` stage reduces the source tree to the manifests, Cargo.lock and an empty stub for
#     every Rust target file (src/lib.rs, src/main.rs, src/bin/*.rs, build.rs, benches/, tests/,
#     examples/). Docker caches `COPY --from=skeleton` by content, so the expensive
#     "build all dependencies" layer (librdkafka is compiled from C source by rdkafka-sys) is reused
#     until a manifest, the lockfile or the set of target files changes;
#   * the cargo registry is a BuildKit cache mount, so crates are downloaded once per builder.

# Base images (pin digests in CI with `docker buildx imagetools inspect` if you want byte-reproducible builds):
#   builder  rust:1.95-bookworm   (matches rust-version in Cargo.toml)
#   runtime  debian:bookworm-slim (same Debian release as the builder: glibc and OpenSSL match)

# ---------------------------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS skeleton
WORKDIR /src
COPY . .
# Keep Cargo.toml files, Cargo.lock and rust-toolchain files; replace every .rs target entry point by a
# stub; drop everything else. The result only changes when dependencies or the target layout change.
RUN set -eu; \
    mkdir -p /skeleton; \
    find . -path ./target -prune -o \( -name Cargo.toml -o -name Cargo.lock -o -name 'rust-toolchain*' \
        -o -name config.toml -path '*/.cargo/*' \) -type f -print \
      | while read -r f; do mkdir -p "/skeleton/$(dirname "$f")"; cp "$f" "/skeleton/$f"; done; \
    find . -path ./target -prune -o -type f -name '*.rs' \( -path '*/src/lib.rs' -o -path '*/src/main.rs' \
        -o -path '*/src/bin/*' -o -name build.rs -o -path '*/benches/*' -o -path '*/tests/*' \
        -o -path '*/examples/*' \) -print \
      | while read -r f; do \
          mkdir -p "/skeleton/$(dirname "$f")"; \
          case "$f" in */src/lib.rs) : > "/skeleton/$f" ;; *) echo 'fn main() {}' > "/skeleton/$f" ;; esac; \
        done

# ---------------------------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS builder
# rdkafka-sys builds librdkafka from source: a C toolchain, make, perl and bash for its configure
# script, cmake (only used if the `cmake-build` feature is switched on), pkg-config and zlib headers
# (libz-sys links the system zlib). libssl-dev is only needed once rdkafka's `ssl` feature is enabled,
# which SASL_SSL to MSK requires. libcurl is not needed (rdkafka's `curl` feature is off).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake perl pkg-config zlib1g-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0 \
    SQLX_OFFLINE=true

# 1. dependencies only (cached layer)
COPY --from=skeleton /skeleton/ ./
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    cargo build --release --locked \
      -p casino-vault -p casino-concierge -p casino-room-service -p casino

# 2. our code. Only the Rust sources are copied, so editing Terraform or dashboards does not recompile.
# GIT_SHA ends up in <prefix>_build_info{git_sha} (option_env!("CASINO_GIT_SHA") in casino-observability).
ARG GIT_SHA=unknown
ENV CASINO_GIT_SHA=${GIT_SHA}
COPY crates ./crates
COPY services ./services
COPY tools ./tools
# The stubs above are newer than the real files' mtimes from the build context: touch the real sources
# so cargo rebuilds our crates (dependencies stay fresh).
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    find crates services tools -type f -exec touch {} + \
 && cargo build --release --locked \
      -p casino-vault -p casino-concierge -p casino-room-service -p casino \
 && mkdir -p /out \
 && cp target/release/casino-vault target/release/casino-concierge \
       target/release/casino-room-service target/release/casino /out/

# ---------------------------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
# ca-certificates: TLS to MSK/RDS/AWS APIs. libssl3: dynamic OpenSSL once rdkafka's `ssl` feature is on.
# zlib1g is part of the base image. No curl: health checks use the binaries' `healthcheck` subcommand.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 casino \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin casino
WORKDIR /
USER 10001:10001
STOPSIGNAL SIGTERM

# ---------------------------------------------------------------------------------------------------
FROM runtime AS vault
ARG VERSION=dev
LABEL org.opencontainers.image.title="casino-vault" org.opencontainers.image.version="${VERSION}"
COPY --from=builder --chown=0:0 --chmod=0755 /out/casino-vault /usr/local/bin/casino-vault
ENV VAULT_PUBLIC_ADDR=0.0.0.0:8080 \
    VAULT_ADMIN_ADDR=0.0.0.0:9090
EXPOSE 8080 9090
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/casino-vault", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/casino-vault"]

# ---------------------------------------------------------------------------------------------------
FROM runtime AS concierge
ARG VERSION=dev
LABEL org.opencontainers.image.title="casino-concierge" org.opencontainers.image.version="${VERSION}"
COPY --from=builder --chown=0:0 --chmod=0755 /out/casino-concierge /usr/local/bin/casino-concierge
ENV CONCIERGE_PUBLIC_ADDR=0.0.0.0:8080 \
    CONCIERGE_ADMIN_ADDR=0.0.0.0:9090
EXPOSE 8080 9090
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/casino-concierge", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/casino-concierge"]

# ---------------------------------------------------------------------------------------------------
FROM runtime AS room-service
ARG VERSION=dev
LABEL org.opencontainers.image.title="casino-room-service" org.opencontainers.image.version="${VERSION}"
COPY --from=builder --chown=0:0 --chmod=0755 /out/casino-room-service /usr/local/bin/casino-room-service
ENV ROOM_SERVICE_PUBLIC_ADDR=0.0.0.0:8080 \
    ROOM_SERVICE_ADMIN_ADDR=0.0.0.0:9090
EXPOSE 8080 9090
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/casino-room-service", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/casino-room-service"]

# ---------------------------------------------------------------------------------------------------
# Developer CLI; in docker-compose it runs the chat probe: `casino probe chat --serve 0.0.0.0:9100`.
# The probe has no `healthcheck` subcommand; Prometheus' `up{job="chat-probe"}` watches it instead.
FROM runtime AS casino
ARG VERSION=dev
LABEL org.opencontainers.image.title="casino" org.opencontainers.image.version="${VERSION}"
COPY --from=builder --chown=0:0 --chmod=0755 /out/casino /usr/local/bin/casino
EXPOSE 9100
HEALTHCHECK NONE
ENTRYPOINT ["/usr/local/bin/casino"]
CMD ["probe", "chat", "--serve", "0.0.0.0:9100"]
