# syntax=docker/dockerfile:1
# One image for all three services: `gatehouse gateway`, `gatehouse auth`, `gatehouse users`.

# GraphiQL's assets (gateway/graphiql/), bundled with Node.js; the Rust build
# below embeds them without needing Node.js itself.
FROM node:20-bookworm-slim AS graphiql
WORKDIR /src
COPY gateway/graphiql ./gateway/graphiql
COPY examples/spa/gatehouse-client.js ./examples/spa/gatehouse-client.js
RUN cd gateway/graphiql \
    && npm ci --ignore-scripts --no-audit --no-fund --include=dev \
    && node build.mjs /graphiql-assets --client /src/examples/spa/gatehouse-client.js

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
COPY --from=graphiql /graphiql-assets /graphiql-assets
ENV GATEHOUSE_GRAPHIQL_ASSETS=/graphiql-assets
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
# The default command serves the gateway on 4000; healthy once it has a
# supergraph. compose.yaml gives auth and users their own checks.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["gatehouse", "probe", "http://127.0.0.1:4000/ready"]
ENTRYPOINT ["gatehouse"]
CMD ["dev"]
