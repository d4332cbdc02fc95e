#!/usr/bin/env bash
# Fails when the checked-in SDL or supergraph differ from what the code emits.
set -euo pipefail
cd "$(dirname "$0")"
[ -d node_modules ] || npm ci --no-audit --no-fund --silent
fresh=$(mktemp -d)
trap 'rm -rf "$fresh"' EXIT
cargo run --quiet -- schema sdl auth > "$fresh/auth.graphql"
cargo run --quiet -- schema sdl users > "$fresh/users.graphql"
status=0
for name in auth users; do
    if ! diff -u "$name.graphql" "$fresh/$name.graphql"; then
        echo "schema/$name.graphql is out of date: run schema/compose.sh and commit the result" >&2
        status=1
    fi
done
node compose.mjs --check --sdl-dir="$fresh" || status=1
cargo run --quiet -- schema --supergraph supergraph.graphql > "$fresh/public.graphql" || status=1
if ! diff -u public.graphql "$fresh/public.graphql"; then
    echo "schema/public.graphql is out of date: run schema/compose.sh and commit the result" >&2
    status=1
fi
exit $status
