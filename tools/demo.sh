#!/usr/bin/env bash
# demo — the main job on one machine: a private PostgreSQL, a Kafka-protocol broker, vemd, and a
# simulated fleet of trucks (some of them misbehaving) streaming over TCP for about a minute.
# Then it shows what arrived. Everything it starts is stopped, and its directory removed, on
# exit or interrupt. Run through `make demo` (which installs what is missing and builds).
#
#   DEMO_TRUCKS=50 DEMO_SECONDS=60 tools/demo.sh
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=$top/build/bin
trucks=${DEMO_TRUCKS:-50}
seconds=${DEMO_SECONDS:-60}

tmp=$(mktemp -d /tmp/vem-demo.XXXXXX)
chmod 755 "$tmp"
vemd= broker=
cleanup() {
    trap - EXIT INT TERM HUP
    [[ -n $vemd ]] && kill -TERM "$vemd" 2>/dev/null && wait "$vemd" 2>/dev/null
    [[ -n $broker ]] && kill -TERM "$broker" 2>/dev/null && wait "$broker" 2>/dev/null
    "$top/tools/pgtmp.sh" kill "$tmp/pg" >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}
say() { printf '\n== %s\n' "$*"; }

say "PostgreSQL 15 (throw-away cluster)"
mkdir -p "$tmp/pg"
"$top/tools/pgtmp.sh" init "$tmp/pg" || exit 1
pg=$("$top/tools/pgtmp.sh" start "$tmp/pg") || exit 1
echo "$pg"
"$bin/vemctl" db migrate --db "$pg" || exit 1

say "Vehicle registry (vemctl vehicles import: plates and regions of the simulated trucks)"
"$bin/vem-sim" --registry "$tmp/vehicles.csv" --trucks "$trucks" || exit 1
"$bin/vemctl" vehicles import "$tmp/vehicles.csv" --db "$pg" || exit 1

say "vem-broker (librdkafka mock cluster, its own process)"
"$bin/vem-broker" --brokers 3 --topic vem.samples:6 --topic vem.violations:3 \
    --bootstrap-file "$tmp/kafka.addr" >/dev/null 2>"$tmp/broker.log" &
broker=$!
for _ in $(seq 100); do [[ -s $tmp/kafka.addr ]] && break; sleep 0.1; done
cat "$tmp/kafka.addr"

say "vemd"
port=$(free_port)
metrics=$(free_port)
# the stations deliver over CURVE: vemd admits the simulator's key only (daemon/curve.c)
mkdir -p "$tmp/keys" "$tmp/stations.d"
"$bin/vemctl" keys gen vemd-stations --dir "$tmp/keys" >/dev/null || exit 1
"$bin/vemctl" keys gen vem-sim --dir "$tmp/keys" >/dev/null || exit 1
cp "$tmp/keys/vem-sim.pub" "$tmp/stations.d/"
# the station ids vem-sim's one key delivers for (a key delivers only for the ids it lists)
echo 'stations = ["RSD-1", "RSD-2", "RSD-3"];' >>"$tmp/stations.d/vem-sim.pub"
cat >"$tmp/vemd.cfg" <<EOF
terminals: { endpoint = "tcp://127.0.0.1:$port"; reply_mode = "hj1239"; idle_timeout_s = 30; };
gateways: { endpoint = ""; };
stations: { endpoint = "ipc://$tmp/stations.sock"; curve_server_key = "$tmp/keys/vemd-stations.key";
            curve_clients_dir = "$tmp/stations.d";
            # vem-sim's clock runs 50 times real time: its readings are hours "ahead" of receipt
            future_tolerance_s = 86400; };
control: { endpoint = "ipc://$tmp/control.sock"; };
metrics: { address = "127.0.0.1"; port = $metrics; };
spool: { dir = "$tmp/spool"; };
pg: { conninfo = "$pg"; };
# gasoline roadside limits have no default (GB 18285 values to confirm): demo values
rules: { gas_co_pct = 3.0; gas_hc_ppm = 400.0; gas_no_ppm = 1500.0; };
EOF
"$bin/vemd" --config "$tmp/vemd.cfg" 2>"$tmp/vemd.log" &
vemd=$!
for _ in $(seq 100); do
    "$bin/vemctl" status --endpoint "ipc://$tmp/control.sock" --timeout-ms 200 >/dev/null 2>&1 && break
    sleep 0.1
done
echo "terminals on 127.0.0.1:$port, metrics on http://127.0.0.1:$metrics/metrics"

say "vem-sim: $trucks trucks for $seconds s, 50 s of truck time a second (some with a removed SCR, a frozen NOx sensor, an empty urea tank, MIL on, a removal alarm; 10 % go offline and re-send), 3 roadside stations on their routes (over CURVE) measuring them and passing gasoline cars"
"$bin/vem-sim" --connect "127.0.0.1:$port" --trucks "$trucks" --duration "$seconds" --rate 5 \
    --stations 3 --stations-endpoint "ipc://$tmp/stations.sock" \
    --stations-key "$tmp/keys/vem-sim.key" --stations-server-key "$tmp/keys/vemd-stations.pub" \
    --misbehave scr_removed:3 --misbehave frozen_nox:2 --misbehave urea_empty:2 \
    --misbehave mil_on:2 --misbehave removal_alarm:1 --offline 10 --malformed 2 \
    --truth "$tmp/truth.json" || { echo "vem-sim failed" >&2; exit 1; }
sleep 2

say "What vemd counted (vemctl status; zero series left out)"
"$bin/vemctl" status --endpoint "ipc://$tmp/control.sock" | awk 'NR == 1 || $NF != 0'

say "Per vehicle (vemctl status --vehicles; first 15 lines)"
"$bin/vemctl" status --endpoint "ipc://$tmp/control.sock" --vehicles | { read -r h; echo "$h"; sort; } |
    head -n 16
echo "frames vem-sim wrote: $(grep -o '"frames_sent": [0-9]*' "$tmp/truth.json" | grep -o '[0-9]*$')"

say "What PostgreSQL holds (rows per table)"
psql "$pg" -X -q -c "SELECT 'obd_samples' AS table_name, count(*) AS rows FROM obd_samples
    UNION ALL SELECT 'obd_info', count(*) FROM obd_info
    UNION ALL SELECT 'terminal_events', count(*) FROM terminal_events
    UNION ALL SELECT 'quarantine', count(*) FROM quarantine"
echo "samples vem-sim sent: $(grep -o '"samples_sent": [0-9]*' "$tmp/truth.json" | grep -o '[0-9]*$')"

say "Roadside stations: what vem-sim's stations sent and had acknowledged, and what vemd answered"
tr -d ' \n' <"$tmp/truth.json" | grep -o '"stations":{"stations[^{]*' | tr ',' '\n' | sed 's/"//g; s/^stations:{//; /by_station/d'
"$bin/vemctl" status --endpoint "ipc://$tmp/control.sock" | grep -E 'vem_rsd_' | awk '$NF != 0'

say "Roadside readings stored (rsd_readings), per station: counted toward verdicts or not, and why"
psql "$pg" -X -q -c "SELECT station_id, fuel, count(*) AS readings, count(*) FILTER (WHERE counted) AS counted,
    round(avg(no_ppm)) AS avg_no_ppm, max(no_ppm) AS max_no_ppm FROM rsd_readings GROUP BY 1, 2 ORDER BY 1, 2"
psql "$pg" -X -q -c "SELECT regexp_replace(invalid_reason, '[0-9.-]+ outside', 'N outside') AS not_counted_because,
    count(*) FROM rsd_readings WHERE NOT counted GROUP BY 1 ORDER BY 2 DESC"

say "Diesel readings with the highest NO (the trucks with a removed SCR among them), beside the OBD NOx their terminal reported then"
psql "$pg" -X -q -c "SELECT r.plate, r.vin, r.time, r.no_ppm AS roadside_no_ppm, round(s.nox_down_ppm) AS obd_nox_down_ppm
    FROM rsd_readings r LEFT JOIN LATERAL (SELECT nox_down_ppm FROM obd_samples s WHERE s.vin = r.vin
    AND s.sample_time BETWEEN r.time - interval '2 s' AND r.time + interval '2 s' LIMIT 1) s ON true
    WHERE r.fuel = 'diesel' ORDER BY r.no_ppm DESC LIMIT 8"

say "Quarantined input by error class"
psql "$pg" -X -q -c "SELECT source, error_class, count(*), sum(length(raw)) AS bytes
    FROM quarantine GROUP BY 1, 2 ORDER BY 3 DESC"

say "Daily completeness of the first 5 trucks (view daily_completeness)"
psql "$pg" -X -q -c "SELECT vin, plate, region_code, received_samples, expected_samples,
    completeness_pct, resent_samples FROM daily_completeness ORDER BY vin LIMIT 5"

say "One truck, as an agency sees it (vemctl vehicle LVEMSIM0000000000 --samples 3)"
"$bin/vemctl" vehicle LVEMSIM0000000000 --samples 3 --db "$pg"

say "Violations and notices vemd found (vemctl violations)"
"$bin/vemctl" violations --db "$pg" --limit 30

say "What the simulator made each truck do, for comparison"
tr -d ' \n' <"$tmp/truth.json" | grep -o '"misbehaving":{[^}]*}' | grep -o '"LVEM[^]]*' |
    tr -d '"[' | sed 's/:/  /'
echo
