# syntax=docker/dockerfile:1
# One image for all three services: `gatehouse gateway`, `gatehouse auth`, `gatehouse users`.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin gatehouse \
    && cp target/release/gatehouse /usr/local/bin/gatehouse

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app gatehouse \
    && mkdir -p /app/.dev && chown gatehouse /app/.dev
WORKDIR /app
COPY --from=build /usr/local/bin/gatehouse /usr/local/bin/gatehouse
COPY schema ./schema
USER gatehouse
ENTRYPOINT ["gatehouse"]
CMD ["dev"]
