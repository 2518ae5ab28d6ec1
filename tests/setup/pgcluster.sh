#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for hrsync tests.
#
#   tests/setup/pgcluster.sh start  DIR [name=value ...]
#       initdb into DIR/data (if not done yet), start postgres on a unix socket
#       in DIR/sock and on 127.0.0.1:<free port>, create database erp_mirror,
#       write DIR/env and print it (PGHOST, PGPORT, PGUSER, PGDATABASE lines).
#       Extra name=value arguments are appended to postgresql.conf
#       (e.g. wal_level=logical). Running it again on a live cluster only
#       prints the env again.
#   tests/setup/pgcluster.sh stop   DIR     stop the server and remove DIR
#   tests/setup/pgcluster.sh status DIR     "running ..." (exit 0) or
#                                           "not running" (exit 3)
#
# Only the env lines go to stdout, so `eval "$(pgcluster.sh start DIR)"` or
# `set -a; . DIR/env; set +a` both work (as long as DIR has no spaces).
# As root, the server runs as the system user hrsync-pg (created if missing),
# because PostgreSQL refuses to run as root. Override the binaries with
# PG_BINDIR=/usr/lib/postgresql/NN/bin.
set -euo pipefail

PROG=${0##*/}
PGUSER_NAME=hrsync
DBNAME=erp_mirror
RUN_AS=hrsync-pg
MARKER=.hrsync-pgcluster
FIRST_PORT=${PGCLUSTER_FIRST_PORT:-55432}

die() { echo "$PROG: error: $*" >&2; exit 1; }
say() { echo "$PROG: $*" >&2; }

usage() {
    cat >&2 <<EOF
usage: $PROG start DIR [name=value ...]
       $PROG stop DIR
       $PROG status DIR
EOF
    exit 2
}

find_bindir() {
    local d
    if [[ -n ${PG_BINDIR:-} ]]; then
        [[ -x $PG_BINDIR/initdb ]] || die "PG_BINDIR=$PG_BINDIR has no initdb"
        echo "$PG_BINDIR"; return
    fi
    # On Debian /usr/bin/pg_config may be libpq-dev's, whose bindir (/usr/bin)
    # has no initdb: only trust it when initdb is really there.
    if command -v pg_config >/dev/null 2>&1; then
        d=$(pg_config --bindir 2>/dev/null || true)
        if [[ -n $d && -x $d/initdb && -x $d/pg_ctl ]]; then echo "$d"; return; fi
    fi
    if [[ -x /usr/lib/postgresql/15/bin/initdb ]]; then
        echo /usr/lib/postgresql/15/bin; return
    fi
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
        if [[ -x $d/initdb ]]; then echo "$d"; return; fi
    done
    die "no PostgreSQL server binaries found (install postgresql-15, or set PG_BINDIR)"
}

# Absolute path without requiring it to exist.
abspath() {
    local p=$1
    [[ $p == /* ]] || p="$PWD/$p"
    realpath -m -- "$p"
}

check_dir_arg() {
    [[ -n ${1:-} ]] || usage
    DIR=$(abspath "$1")
    case "$DIR" in
        / | /tmp | /var | /var/tmp | /home | /root | /usr | /etc | /work)
            die "refusing to use $DIR as a cluster directory: give a dedicated directory such as /tmp/hrsync-pg-XXXX" ;;
    esac
    DATA="$DIR/data"
    SOCK="$DIR/sock"
    LOG="$DIR/postgres.log"
    ENVF="$DIR/env"
}

# Run a command as the cluster owner (hrsync-pg when root, else ourselves).
# cd / first: the caller's cwd may be unreadable for hrsync-pg.
as_owner() {
    if [[ $EUID -eq 0 ]]; then
        (cd / && runuser -u "$RUN_AS" -- "$@")
    else
        "$@"
    fi
}

ensure_user() {
    [[ $EUID -eq 0 ]] || return 0
    if ! id -u "$RUN_AS" >/dev/null 2>&1; then
        say "creating system user $RUN_AS"
        useradd --system --no-create-home --shell /usr/sbin/nologin "$RUN_AS" \
            || die "could not create system user $RUN_AS"
    fi
    command -v runuser >/dev/null 2>&1 || die "runuser not found (util-linux)"
}

is_running() {
    [[ -f $DATA/PG_VERSION ]] || return 1
    as_owner "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

current_port() {
    # The port the running/last-configured server uses (from our conf include).
    [[ -f $DATA/hrsync-pgcluster.conf ]] || return 0
    sed -n "s/^port = \([0-9]*\).*/\1/p" "$DATA/hrsync-pgcluster.conf" | tail -n1
}

port_free() {
    # True when nothing listens on 127.0.0.1:$1 (bind test; does not need ss/netstat).
    /usr/bin/python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}

pick_port() {
    local p=$1
    while (( p < 65000 )); do
        if port_free "$p"; then echo "$p"; return; fi
        p=$((p + 1))
    done
    die "no free TCP port found from $1 upward"
}

write_env() {
    local port=$1
    {
        echo "PGHOST=$SOCK"
        echo "PGPORT=$port"
        echo "PGUSER=$PGUSER_NAME"
        echo "PGDATABASE=$DBNAME"
    } >"$ENVF.tmp"
    mv -f "$ENVF.tmp" "$ENVF"
    chmod 0644 "$ENVF"
    cat "$ENVF"
}

write_conf() {
    local port=$1; shift
    local f="$DATA/hrsync-pgcluster.conf"
    {
        echo "# written by $PROG; included from postgresql.conf"
        echo "port = $port"
        echo "listen_addresses = '127.0.0.1'"
        echo "unix_socket_directories = '$SOCK'"
        echo "unix_socket_permissions = 0777"
        echo "max_connections = 50"
        echo "fsync = off"
        echo "full_page_writes = off"
        echo "synchronous_commit = off"
        echo "logging_collector = off"
        echo "log_line_prefix = '%m [%p] %q%u@%d '"
        echo "timezone = 'UTC'"
        echo "log_timezone = 'UTC'"
        local kv
        for kv in "$@"; do
            [[ $kv == *=* ]] || die "extra setting '$kv' is not name=value"
            echo "${kv%%=*} = ${kv#*=}"
        done
    } >"$f.tmp"
    if [[ $EUID -eq 0 ]]; then chown "$RUN_AS:" "$f.tmp"; fi
    mv -f "$f.tmp" "$f"
}

cmd_start() {
    check_dir_arg "${1:-}"; shift
    local extra=("$@")
    BINDIR=$(find_bindir)
    ensure_user

    # Unix socket paths are limited to 107 bytes.
    if (( ${#SOCK} + 18 > 107 )); then
        die "socket path $SOCK/.s.PGSQL.NNNNN is too long for a unix socket: use a shorter DIR"
    fi

    if [[ -e $DIR && ! -d $DIR ]]; then die "$DIR exists and is not a directory"; fi
    local created=0
    if [[ ! -d $DIR ]]; then
        mkdir -p -- "$DIR"
        created=1
    fi
    if [[ ! -f $DIR/$MARKER ]]; then
        # Only adopt an empty directory (or one we created): never take over
        # (and later delete) a directory holding something else.
        if [[ $created -eq 0 && -n $(ls -A -- "$DIR") ]]; then
            die "$DIR is not empty and was not made by $PROG; give a new or empty directory"
        fi
        : >"$DIR/$MARKER"
    fi
    if [[ $EUID -eq 0 ]]; then
        chown "$RUN_AS:" "$DIR" "$DIR/$MARKER"
        chmod 0755 "$DIR"
        if ! runuser -u "$RUN_AS" -- test -w "$DIR" -a -x "$DIR" 2>/dev/null; then
            if [[ $created -eq 1 ]]; then rm -rf -- "$DIR"; fi
            die "user $RUN_AS cannot reach $DIR (a parent directory is not traversable, e.g. under /root): use a directory under /tmp"
        fi
    fi
    mkdir -p -- "$SOCK"
    chmod 0755 "$SOCK"
    if [[ $EUID -eq 0 ]]; then chown "$RUN_AS:" "$SOCK"; fi

    if is_running; then
        local port; port=$(current_port)
        [[ -n $port ]] || die "a server runs on $DATA but its port is unknown"
        say "already running on port $port"
        write_env "$port"
        return 0
    fi

    if [[ ! -f $DATA/PG_VERSION ]]; then
        if [[ -d $DATA && -n $(ls -A -- "$DATA") ]]; then
            die "$DATA exists, is not empty and holds no cluster: remove it (or run '$PROG stop $DIR')"
        fi
        local locale=C
        if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then locale=C.UTF-8; fi
        say "initdb into $DATA (locale $locale)"
        if ! as_owner "$BINDIR/initdb" -D "$DATA" --auth=trust --username="$PGUSER_NAME" \
                --encoding=UTF8 --locale="$locale" --no-instructions \
                >"$DIR/initdb.log" 2>&1; then
            cat "$DIR/initdb.log" >&2
            die "initdb failed (log above, also in $DIR/initdb.log)"
        fi
        echo "include_if_exists = 'hrsync-pgcluster.conf'" >>"$DATA/postgresql.conf"
    fi

    # Start, retrying on the next port when another process grabs ours meanwhile.
    local port tries=0 startp
    startp=$(current_port)
    [[ -n $startp ]] || startp=$FIRST_PORT
    while :; do
        port=$(pick_port "$startp")
        write_conf "$port" "${extra[@]+"${extra[@]}"}"
        if as_owner "$BINDIR/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 -s start >/dev/null 2>&1; then
            break
        fi
        tries=$((tries + 1))
        if (( tries >= 5 )) || ! tail -n 20 "$LOG" 2>/dev/null | grep -qiE 'could not (bind|create listen)|address already in use'; then
            tail -n 30 "$LOG" >&2 || true
            die "postgres failed to start (log: $LOG)"
        fi
        startp=$((port + 1))
    done

    local i
    for i in $(seq 1 100); do
        if "$BINDIR/pg_isready" -q -h "$SOCK" -p "$port" -d postgres -U "$PGUSER_NAME"; then break; fi
        (( i == 100 )) && die "server did not become ready (log: $LOG)"
        sleep 0.1
    done

    local have
    have=$("$BINDIR/psql" -X -A -t -q -h "$SOCK" -p "$port" -U "$PGUSER_NAME" -d postgres \
        -c "SELECT 1 FROM pg_database WHERE datname = '$DBNAME'")
    if [[ $have != 1 ]]; then
        "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$port" -U "$PGUSER_NAME" -d postgres \
            -c "CREATE DATABASE $DBNAME" >/dev/null || die "could not create database $DBNAME"
    fi
    say "running: port $port, socket dir $SOCK, log $LOG"
    write_env "$port"
}

cmd_stop() {
    check_dir_arg "${1:-}"
    if [[ ! -e $DIR ]]; then
        say "$DIR does not exist: nothing to stop"
        return 0
    fi
    [[ -d $DIR ]] || die "$DIR is not a directory"
    if [[ ! -f $DIR/$MARKER ]]; then
        die "$DIR was not made by $PROG (no $MARKER): not touching it"
    fi
    if [[ -f $DATA/PG_VERSION ]]; then
        BINDIR=$(find_bindir)
        if [[ $EUID -eq 0 ]] && ! id -u "$RUN_AS" >/dev/null 2>&1; then
            : # no owner user: nothing can be running as it
        elif is_running; then
            if ! as_owner "$BINDIR/pg_ctl" -D "$DATA" -m fast -w -t 60 -s stop; then
                say "fast shutdown failed, trying immediate"
                as_owner "$BINDIR/pg_ctl" -D "$DATA" -m immediate -w -t 30 -s stop \
                    || die "could not stop the server on $DATA"
            fi
        fi
    fi
    rm -rf -- "$DIR"
    say "stopped and removed $DIR"
}

cmd_status() {
    check_dir_arg "${1:-}"
    if [[ ! -f $DATA/PG_VERSION ]]; then
        echo "not running (no cluster in $DIR)"
        return 3
    fi
    BINDIR=$(find_bindir)
    if is_running; then
        local pid; pid=$(head -n1 "$DATA/postmaster.pid" 2>/dev/null || echo '?')
        echo "running (pid $pid, port $(current_port), socket dir $SOCK)"
        return 0
    fi
    echo "not running"
    return 3
}

[[ $# -ge 2 ]] || usage
cmd=$1; shift
case "$cmd" in
    start)  cmd_start "$@" ;;
    stop)   [[ $# -eq 1 ]] || usage; cmd_stop "$@" ;;
    status) [[ $# -eq 1 ]] || usage; cmd_status "$@" ;;
    *) usage ;;
esac
