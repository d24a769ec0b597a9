#!/usr/bin/env bash
# Measures one upload's round trip through a real kafka-server on PostgreSQL with its bytes in
# the data directory or in the database: upload time, download time, the server's resident
# memory (before, peak) and the bytes' size in the database. One line per repetition.
#
#   tests/bench/upload_store.sh SERVER_BIN POSTGRES_ADMIN_URL dir|db [MiB=25] [REPEAT=3]
#
# POSTGRES_ADMIN_URL may create databases (each repetition gets a fresh one, dropped after).
set -euo pipefail
bin=$1 admin=$2 mode=$3 mib=${4:-25} repeat=${5:-3}
psql=$(command -v psql || ls /usr/lib/postgresql/*/bin/psql | tail -1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
head -c $((mib * 1024 * 1024)) /dev/urandom >"$work/upload.bin"

kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$2/status"; }

for run in $(seq "$repeat"); do
    db=kafka_bench_$$_$run
    "$psql" "$admin" -qc "CREATE DATABASE $db"
    url="${admin%/*}/$db"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    base="http://127.0.0.1:$port"
    RUST_LOG=warn "$bin" --bind "127.0.0.1:$port" --data-dir "$work/data-$run" --database-url "$url" \
        --upload-store "$mode" --max-upload-mb $((mib + 1)) 2>"$work/server.log" &
    pid=$!
    until curl -sf "$base/healthz" >/dev/null; do sleep 0.1; done
    login=$(curl -sf -H 'content-type: application/json' -d '{"email":"bench@example.com"}' "$base/auth/login")
    user=$(jq -r .user_id <<<"$login") workspace=$(jq -r '.workspaces[0].id' <<<"$login")
    chat=$(curl -sf -F user_id="$user" -F workspace_id="$workspace" -F chat_name=bench "$base/chat/new" | jq -r .chat_id)
    rss_before=$(kib VmRSS $pid)
    up=$(curl -sf -o "$work/answer" -w '%{time_total}' -F target_id="$chat" -F is_chat=true \
        -F "files=@$work/upload.bin" "$base/file/upload")
    file=$(jq -r '.files[0]' "$work/answer")
    peak_up=$(kib VmHWM $pid)
    down=$(curl -sf -o "$work/download.bin" -w '%{time_total}' "$base/file/$file/content")
    peak=$(kib VmHWM $pid) rss_after=$(kib VmRSS $pid)
    cmp -s "$work/upload.bin" "$work/download.bin" || { echo "run $run: the download differs" >&2; exit 1; }
    # upload_chunks with its TOAST table; pg_largeobject too (for a large-object variant).
    in_db=$("$psql" "$url" -tAc "SELECT pg_size_pretty(pg_total_relation_size('upload_chunks')
        + pg_total_relation_size('pg_largeobject'))")
    kill "$pid"
    wait "$pid" || true
    "$psql" "$admin" -qc "DROP DATABASE $db WITH (FORCE)"
    echo "$mode ${mib} MiB run $run: upload ${up}s, download ${down}s; server RSS before ${rss_before} KiB," \
        "peak during upload ${peak_up} KiB, peak ${peak} KiB, after ${rss_after} KiB; in the database ${in_db}"
done
