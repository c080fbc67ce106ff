#!/bin/sh
# measure.sh [BIN_DIR] - vemd's RSS and CPU under each abuse of abuse.py (issue #13), with a
# 20-truck vem-sim fleet running beside. vemd runs without sinks (pg.enable = false), its spool
# in a scratch directory; everything started here is stopped by its pid at the end.
#   tests/data/hostile/measure.sh build/bin
set -eu
BIN=$(cd "${1:-build/bin}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=$(mktemp -d /tmp/vem-abuse.XXXXXX)
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$DIR/vemd.cfg" <<CFG
terminals: { endpoint = "tcp://127.0.0.1:$PORT"; reply_mode = "hj1239"; send_timeout_s = 5; };
gateways: { endpoint = "ipc://$DIR/gateway.sock"; };
stations: { endpoint = ""; };
control: { endpoint = "ipc://$DIR/control.sock"; };
metrics: { enable = false; };
pipeline: { workers = 2; };
spool: { dir = "$DIR/spool"; };
pg: { enable = false; };
log: { level = "notice"; };
CFG
"$BIN/vemd" --config "$DIR/vemd.cfg" 2>"$DIR/vemd.log" &
VEMD=$!
sleep 2
"$BIN/vem-sim" --connect "127.0.0.1:$PORT" --trucks 20 --duration 70 --rate 1 --quiet &
SIM=$!
sleep 2
status() { "$BIN/vemctl" status --endpoint "ipc://$DIR/control.sock" --json >"$1"; }
for mode in pattern garbage unread connect; do
    status "$DIR/before.json"
    python3 "$HERE/abuse.py" --pid "$VEMD" --port "$PORT" --mode "$mode" --seconds 10
    sleep 3 # the sweeps close what is left
    status "$DIR/after.json"
    # what vemd saw of it: the metrics that moved
    python3 - "$DIR/before.json" "$DIR/after.json" <<'PY'
import json, sys
a, b = (json.load(open(f))["metrics"] for f in sys.argv[1:3])
for k in sorted(b):
    if k.startswith(("vem_connections_", "vem_inputs", "vem_replies", "vem_bytes",
                     "vem_stream_drops", "vem_errors")) and b[k] != a.get(k, 0):
        print(f"  {k} +{b[k] - a.get(k, 0):.0f}")
PY
done
kill "$SIM" 2>/dev/null || true
kill -TERM "$VEMD"
wait "$VEMD" || true
grep -c "closing" "$DIR/vemd.log" | sed 's/^/  vemd log lines "closing": /'
rm -rf "$DIR"
