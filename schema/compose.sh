#!/usr/bin/env bash
# Writes each subgraph's SDL (from the code) to schema/ and composes
# schema/supergraph.graphql from them, then prints its public API schema to
# schema/public.graphql (what clients see and introspect).
set -euo pipefail
cd "$(dirname "$0")"
[ -d node_modules ] || npm ci --no-audit --no-fund --silent
cargo run --quiet -- schema sdl auth > auth.graphql
cargo run --quiet -- schema sdl users > users.graphql
node compose.mjs
cargo run --quiet -- schema --supergraph supergraph.graphql > public.graphql
