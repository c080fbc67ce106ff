#!/usr/bin/env bash
# pgtmp — a throw-away PostgreSQL 15 cluster in a directory of its own.
#
#   pgtmp.sh init  DIR        initdb into DIR/data (as postgres when run as root)
#   pgtmp.sh start DIR        start it on a free loopback port with a private socket dir;
#                             prints the libpq conninfo and writes it to DIR/conninfo
#   pgtmp.sh stop  DIR        fast shutdown (the cluster stays, start brings it back)
#   pgtmp.sh kill  DIR        immediate shutdown, for cleanup paths
#   pgtmp.sh psql  DIR ARGS   psql against it
#
# Used by tests/harness.sh, by the demo, and by fault tests that stop and restart the server.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
cmd=${1:?usage: pgtmp.sh init|start|stop|kill|psql DIR}
dir=${2:?usage: pgtmp.sh init|start|stop|kill|psql DIR}

as_owner() {
    if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi
}

port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

case $cmd in
init)
    mkdir -p "$dir/sock"
    ((EUID != 0)) || chown -R postgres: "$dir"
    as_owner "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
        --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    ;;
start)
    port=$(cat "$dir/port" 2>/dev/null || true)
    for attempt in $(seq 1 20); do
        if [[ -z $port ]] || ! port_free "$port"; then
            port=$((20000 + RANDOM % 40000))
            port_free "$port" || continue
        fi
        if as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/sock -c fsync=on \
                -c max_connections=200 -c shared_buffers=256MB" start >/dev/null; then
            echo "$port" >"$dir/port"
            info="host=$dir/sock port=$port user=postgres dbname=vem"
            [[ -f $dir/created ]] || {
                as_owner "$PGBIN/createdb" -h "$dir/sock" -p "$port" -U postgres vem
                touch "$dir/created"
            }
            echo "$info" >"$dir/conninfo"
            echo "$info"
            exit 0
        fi
        port=
    done
    echo "pgtmp: could not start PostgreSQL, see $dir/server.log" >&2
    tail -n 20 "$dir/server.log" >&2 || true
    exit 1
    ;;
stop | kill)
    mode=fast
    [[ $cmd == kill ]] && mode=immediate
    [[ -f $dir/data/postmaster.pid ]] || exit 0
    as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m "$mode" -w -t 60 stop >/dev/null
    ;;
psql)
    shift 2
    exec psql "$(cat "$dir/conninfo")" -X -q -v ON_ERROR_STOP=1 "$@"
    ;;
*)
    echo "pgtmp: unknown command $cmd" >&2
    exit 2
    ;;
esac
