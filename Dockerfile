# syntax=docker/dockerfile:1
# hookwarden container image: a build stage with the Rust toolchain, then a runtime stage
# with only the binary, its default config and glibc (distroless, no shell, uid 65532).
#
#   docker build -t hookwarden:0.1.0 .
#
# The image runs `hookwarden run --config /etc/hookwarden/hookwarden.toml`: it listens on
# 0.0.0.0:8080, forwards to 127.0.0.1:3000 (the app beside it in the pod) and keeps its
# replay store in the volume /var/lib/hookwarden. Mount your own config over
# /etc/hookwarden (the Helm chart does) and give the secrets as files or env variables.

ARG RUST_VERSION=1

FROM rust:${RUST_VERSION}-bookworm AS build
# cmake: pingora's compression dependency (libz-ng-sys) builds with it. Its version is the
# one of the base image's Debian release, so it is not pinned here.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY config ./config
# Cache mounts keep the crate downloads and the build between image builds; the binary is
# copied out of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin hookwarden \
    && install -D -m 0755 target/release/hookwarden /out/usr/local/bin/hookwarden
# The repository's default config, adapted to a container: both listeners on every
# interface (probes and scrapes come from outside the container) and the store in the
# volume. The greps and the check fail the build if the config stops matching.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN mkdir -p /out/etc/hookwarden /out/var/lib/hookwarden \
    && sed -e '/^admin_listen = /d' \
           -e 's|^listen = "127\.0\.0\.1:8080"|listen = "0.0.0.0:8080"\nadmin_listen = "0.0.0.0:9090"|' \
           -e 's|^path = "data/hookwarden"|path = "/var/lib/hookwarden/store"|' \
           config/hookwarden.toml > /out/etc/hookwarden/hookwarden.toml \
    && grep -q '^listen = "0.0.0.0:8080"' /out/etc/hookwarden/hookwarden.toml \
    && grep -q '^admin_listen = "0.0.0.0:9090"' /out/etc/hookwarden/hookwarden.toml \
    && grep -q '^path = "/var/lib/hookwarden/store"' /out/etc/hookwarden/hookwarden.toml \
    && AJ_WEBHOOK_SHARED_SECRET=build-time-check-only-not-a-real-secret \
       /out/usr/local/bin/hookwarden check --config /out/etc/hookwarden/hookwarden.toml

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
LABEL org.opencontainers.image.title="hookwarden" \
      org.opencontainers.image.description="A verifying reverse proxy that lets only genuine, fresh, unseen webhooks reach your app" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/usr/local/bin/hookwarden /usr/local/bin/hookwarden
COPY --from=build /out/etc/hookwarden/hookwarden.toml /etc/hookwarden/hookwarden.toml
COPY --from=build --chown=65532:65532 /out/var/lib/hookwarden /var/lib/hookwarden
USER 65532:65532
VOLUME ["/var/lib/hookwarden"]
# 8080: webhooks (proxy); 9090: /livez, /readyz, /metrics (admin).
EXPOSE 8080 9090
ENTRYPOINT ["hookwarden"]
CMD ["run", "--config", "/etc/hookwarden/hookwarden.toml"]
