#!/usr/bin/env bash
# Regenerates the documentation that comes from code: .env.example and the
# README's configuration table (tests fail when either is stale).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet -- config > .env.example
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
echo "updated .env.example and the README configuration table"
