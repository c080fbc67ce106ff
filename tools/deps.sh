#!/usr/bin/env bash
# Installs the Debian packages vemd needs to build, test and run its demo.
# As root it runs apt-get; otherwise it prints the exact command and fails, so nothing relies
# on a package somebody installed by hand.
set -euo pipefail

packages=(
    build-essential pkg-config clang libclang-rt-14-dev clang-format   # compilers, libFuzzer, format
    libzmq3-dev libpq-dev librdkafka-dev libconfig-dev                  # the fixed libraries
    check libsubunit-dev                                                # unit tests
    libjansson-dev                                                      # JSON (vemctl decode, Kafka events)
    zlib1g-dev                                                          # CRC32 of spool records
    libssl-dev openssl                                                  # SM2/SM3 (libcrypto); the CLI makes independent test signatures
    libmicrohttpd-dev                                                   # metrics endpoint
    libsystemd-dev systemd                                              # sd_notify; systemd-analyze
    postgresql-15 postgresql-client-15                                  # real server for tests and demo
    kcat                                                                # independent Kafka client in tests
    python3-jsonschema                                                  # independent check of schema/kafka and schema/*.schema.json
    util-linux procps                                                   # runuser, setsid; pkill-free cleanup
)

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
    echo "deps: all ${#packages[@]} packages present"
    exit 0
fi

cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
if ((EUID != 0)); then
    echo "deps: missing packages: ${missing[*]}" >&2
    echo "deps: run as root:  apt-get update && ${cmd[*]}" >&2
    exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
"${cmd[@]}"
