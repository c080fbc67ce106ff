#!/usr/bin/env bash
# harness — runs a command next to real components, and always tears them down.
#
#   tests/harness.sh CMD [ARGS...]
#
# Starts a throw-away PostgreSQL 15 cluster (tools/pgtmp.sh: initdb in a temp directory,
# private socket directory, free loopback port, as the postgres user when run as root) with
# the schema/ migrations applied by `vemctl db migrate`, and a vem-broker process (librdkafka's mock
# cluster over TCP). CMD runs in its own process group with:
#   VEM_TEST_PG        libpq conninfo of the cluster (database vem)
#   VEM_TEST_PGDIR     the cluster's directory, for tools/pgtmp.sh stop|start in fault tests
#   VEM_TEST_KAFKA     the broker's bootstrap address
#   VEM_TEST_BROKER_PID  the broker's pid (SIGUSR1 = brokers down, SIGUSR2 = up)
#   VEM_TEST_TMP       a scratch directory removed afterwards
# On exit, failure or interrupt: the command's process group, the broker and the cluster are
# stopped and the directory removed. Exit status is CMD's.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${VEM_TEST_BIN:-$top/build/bin}

tmp=$(mktemp -d /tmp/vem-test.XXXXXX)
chmod 755 "$tmp"
job= broker=

cleanup() {
    trap - EXIT INT TERM HUP
    # The command's whole process group: also what a failed test left running (vemd, vem-sim).
    if [[ -n $job ]] && kill -0 -- "-$job" 2>/dev/null; then
        kill -TERM -- "-$job" 2>/dev/null
        for _ in $(seq 50); do kill -0 -- "-$job" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$job" 2>/dev/null
    fi
    if [[ -n $broker ]] && kill -0 "$broker" 2>/dev/null; then
        kill -TERM "$broker"
        for _ in $(seq 50); do kill -0 "$broker" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$broker" 2>/dev/null
        wait "$broker" 2>/dev/null
    fi
    "$top/tools/pgtmp.sh" kill "$tmp/pg" >/dev/null 2>&1
    # filesystems a fault test mounted under the scratch directory and could not unmount
    awk -v t="$tmp/" 'index($2, t) == 1 { print $2 }' /proc/mounts | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# PostgreSQL
mkdir -p "$tmp/pg"
"$top/tools/pgtmp.sh" init "$tmp/pg" || exit 1
pg=$("$top/tools/pgtmp.sh" start "$tmp/pg") || exit 1
"$bin/vemctl" db migrate --db "$pg" --dir "$top/schema" >"$tmp/migrate.log" 2>&1 ||
    { echo "harness: vemctl db migrate failed" >&2; cat "$tmp/migrate.log" >&2; exit 1; }

# Kafka-protocol broker
"$bin/vem-broker" --brokers 3 --topic vem.test:3 --topic vem.samples:6 --topic vem.violations:3 \
    --topic vem.frames:6 --topic vem.terminal:3 --topic vem.rsd:3 --bootstrap-file "$tmp/kafka.addr" >"$tmp/broker.log" 2>&1 &
broker=$!
for _ in $(seq 100); do [[ -s $tmp/kafka.addr ]] && break; kill -0 "$broker" 2>/dev/null || break; sleep 0.1; done
[[ -s $tmp/kafka.addr ]] || { echo "harness: vem-broker did not start" >&2; cat "$tmp/broker.log" >&2; exit 1; }

mkdir -p "$tmp/tmp"
export TMPDIR=$tmp/tmp VEM_TEST_PG=$pg VEM_TEST_PGDIR=$tmp/pg VEM_TEST_KAFKA=$(cat "$tmp/kafka.addr") \
    VEM_TEST_BROKER_PID=$broker VEM_TEST_TMP=$tmp VEM_TEST_BIN=$bin
echo "harness: PostgreSQL at $pg; vem-broker at $VEM_TEST_KAFKA"

set -m
"$@" &
job=$!
set +m
wait "$job"
exit $?
