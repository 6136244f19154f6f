#!/usr/bin/env bash
# The closest thing to `livedash demo` until it exists: CSV import, import processing (sessions, transcripts,
# messages) and synchronous AI analysis against the built-in OpenAI emulator, on the embedded defaults.
# No RabbitMQ, no PostgreSQL: SQLite in a temporary folder, the in-memory broker, the built-in demo source.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${BIN:-.venv/bin}
port=${DEMO_PORT:-8765}
openai_port=${DEMO_OPENAI_PORT:-8766}
work=$(mktemp -d)
export DATABASE_URL="sqlite:///$work/livedash.sqlite3" BROKER=memory SECRET_KEY=demo-secret \
    CSV_ALLOW_PRIVATE_NETWORKS=true OPENAI_BASE_URL="http://127.0.0.1:$openai_port/v1" OPENAI_API_KEY=demo \
    SESSION_PROCESSING_CONCURRENCY=16

"$bin/livedash" devtools generate --companies 3 --sessions 300 --out "$work/data" \
    --base-url "http://127.0.0.1:$port"
"$bin/livedash" devtools source --dir "$work/data" --port "$port" >"$work/source.log" 2>&1 &
source_pid=$!
"$bin/livedash" devtools openai --port "$openai_port" --latency 0.05 >"$work/openai.log" 2>&1 &
openai_pid=$!
trap 'kill "$source_pid" "$openai_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do
    grep -q "Serving" "$work/source.log" 2>/dev/null && grep -q "emulator at" "$work/openai.log" 2>/dev/null && break
    sleep 0.1
done

"$bin/livedash" db upgrade
"$bin/python" - "$work/data/manifest.json" <<'PY' | while IFS=$'\t' read -r name url user password; do
import json, sys
for company in json.load(open(sys.argv[1]))["companies"]:
    print("\t".join([company["name"], company["csv_url"], company["username"], company["password"]]))
PY
    "$bin/livedash" companies add --name "$name" --csv-url "$url" --username "$user" --password "$password" >/dev/null
done

echo "== importing every company's CSV"
"$bin/livedash" schedulers trigger csv-import --inline
echo "== importing again: nothing changed upstream"
"$bin/livedash" schedulers trigger csv-import --inline
echo "== deriving sessions: transcripts fetched and parsed into messages"
"$bin/livedash" schedulers trigger import-processing --inline
echo "== analysing sessions: chat completions against the OpenAI emulator"
"$bin/livedash" schedulers trigger session-processing --inline
"$bin/livedash" status
