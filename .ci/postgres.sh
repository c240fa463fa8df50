#!/usr/bin/env bash
# A throw-away PostgreSQL for an MLflow tracking server (tests/test_tracking_server.py, the README).
#
#   .ci/postgres.sh install     install Debian's postgresql with apt-get when no initdb is found (quietly)
#   .ci/postgres.sh start DIR   a new cluster in DIR (an empty folder) on a free port of 127.0.0.1 with a
#                               database "mlflow"; prints its DSN: postgresql://postgres@127.0.0.1:PORT/mlflow
#   .ci/postgres.sh stop DIR    stop that cluster (DIR can then be removed)
#
# As root the server runs as the "postgres" user (PostgreSQL refuses root). Authentication is "trust":
# the cluster listens on 127.0.0.1 only and is meant for tests and a researcher's own machine.
set -euo pipefail

bin_dir() {  # the folder of initdb, pg_ctl, createdb: Debian's newest /usr/lib/postgresql/N/bin, else initdb's on PATH
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$found" ] && [ -x "$found/initdb" ]; then echo "$found"; return; fi
    command -v initdb >/dev/null 2>&1 && dirname "$(readlink -f "$(command -v initdb)")"
}

as_owner() {  # run a PostgreSQL command as the user the server runs as
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
install)
    if bin_dir >/dev/null; then exit 0; fi
    if ! command -v apt-get >/dev/null 2>&1; then echo "no apt-get: install PostgreSQL yourself" >&2; exit 1; fi
    as_root=""
    if [ "$(id -u)" != 0 ]; then as_root="sudo -n"; fi
    if { $as_root apt-get update -qq && $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } \
            >/dev/null 2>&1; then
        echo "installed PostgreSQL $("$(bin_dir)/postgres" --version | awk '{print $NF}')"
    else
        echo "PostgreSQL could not be installed (apt-get failed)" >&2
        exit 1
    fi
    ;;
start)
    dir=${2:?usage: postgres.sh start DIR}
    bin=$(bin_dir) || { echo "PostgreSQL is not installed (run: .ci/postgres.sh install)" >&2; exit 1; }
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || { echo "running as root and there is no postgres user" >&2; exit 1; }
        chown postgres "$dir"
    fi
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 \
        || { echo "initdb failed: $(tail -n 1 "$dir/initdb.log")" >&2; exit 1; }
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-h 127.0.0.1 -p $port -k $dir -c fsync=off" start >/dev/null \
        || { echo "PostgreSQL did not start: $(tail -n 1 "$dir/server.log")" >&2; exit 1; }
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres mlflow
    echo "postgresql://postgres@127.0.0.1:$port/mlflow"
    ;;
stop)
    dir=${2:?usage: postgres.sh stop DIR}
    bin=$(bin_dir)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
    ;;
*)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
