#!/usr/bin/env bash
# Regenerates the documentation that comes from code: .env.example,
# gatehouse.example.toml and the README's configuration table (tests fail
# when any is stale).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet -- config > .env.example
cargo run --quiet -- config --format toml > gatehouse.example.toml
table=$(cargo run --quiet -- config --format markdown)
python3 - "$table" <<'PY'
import re, sys
table = sys.argv[1] + "\n"
text = open("README.md").read()
start = text.index("<!-- config:start")
start = text.index("-->\n", start) + 4
end = text.index("<!-- config:end -->")
open("README.md", "w").write(text[:start] + table + text[end:])
PY
echo "updated .env.example, gatehouse.example.toml and the README configuration table"
