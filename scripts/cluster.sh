#!/usr/bin/env bash
# A local cloud cluster: N `collm cloud` replicas on loopback ports behind HAProxy or nginx, routed
# by the edges' session header (deploy/haproxy.cfg, deploy/nginx.conf; see deploy/README.md).
#
#   scripts/cluster.sh up [--replicas N] [--balancer haproxy|nginx] [--base-port P] [--dir DIR]
#                         [--collm BIN] [--timeout S] [-- CLOUD_ARGS...]
#       The balancer listens on 127.0.0.1:P (default 50051), replica k on P+k. CLOUD_ARGS go to
#       every `collm cloud` (e.g. -- --threads 1 --no-full-model). Installs the balancer with
#       apt-get when it is missing. Prints the address to give edges (--cloud HOST:PORT).
#   scripts/cluster.sh down [--dir DIR]             stop the balancer and every replica
#   scripts/cluster.sh status [--dir DIR]           each replica's pid and Health (sessions, memory)
#   scripts/cluster.sh restart K [--dir DIR]        graceful restart of replica K (SIGTERM: it drains,
#                                                   then starts again on its port): one rolling-restart step
#   scripts/cluster.sh kill K [--dir DIR]           SIGKILL replica K (a crash, for failover drills)
#   scripts/cluster.sh start K [--dir DIR]          start replica K again after a kill
#
# State (pid files, logs, generated balancer config) lives in DIR (default: .cluster in the
# repository, git-ignored). The collm binary: --collm, else $COLLM_BIN, else .build/release/collm,
# else .build/debug/collm. Every wait is bounded (--timeout, default 120 s, for a replica to load).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOST=127.0.0.1
export PATH="$PATH:/usr/sbin:/sbin"  # haproxy and nginx live in sbin

# Close every inherited descriptor beyond stdio: the replicas and the balancer outlive this script,
# and a caller that watches a pipe or socket for this script's exit must not wait for them too.
for fd in $(ls /proc/$$/fd 2>/dev/null); do
    if (( fd > 2 )); then eval "exec $fd>&-" 2>/dev/null || true; fi
done

die() { echo "cluster: error: $*" >&2; exit 1; }
say() { echo "cluster: $*" >&2; }

usage() { sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit "${1:-2}"; }

command_name="${1:-}"
[[ -n "$command_name" ]] || usage
shift
case "$command_name" in -h|--help|help) usage 0 ;; esac

REPLICAS=3
BALANCER=haproxy
BASE_PORT=50051
DIR="$REPO/.cluster"
COLLM="${COLLM_BIN:-}"
TIMEOUT=120
CLOUD_ARGS=()
TARGET=""

while [[ $# -gt 0 ]]; do
    case "$1" in
        --replicas) REPLICAS="${2:?--replicas needs a value}"; shift 2 ;;
        --balancer) BALANCER="${2:?--balancer needs a value}"; shift 2 ;;
        --base-port) BASE_PORT="${2:?--base-port needs a value}"; shift 2 ;;
        --dir) DIR="${2:?--dir needs a value}"; shift 2 ;;
        --collm) COLLM="${2:?--collm needs a value}"; shift 2 ;;
        --timeout) TIMEOUT="${2:?--timeout needs a value}"; shift 2 ;;
        --) shift; CLOUD_ARGS=("$@"); break ;;
        -h|--help) usage 0 ;;
        -*) die "unknown option $1 (see scripts/cluster.sh --help)" ;;
        *) [[ -z "$TARGET" ]] || die "unexpected argument $1"; TARGET="$1"; shift ;;
    esac
done

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_uint "$TIMEOUT" && (( TIMEOUT > 0 )) || die "--timeout must be a positive whole number of seconds"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
STATE="$DIR/cluster.env"

# True when something accepts TCP connections on HOST:$1.
port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# True when pid $1 runs (a zombie, killed but not reaped yet, does not count).
alive() {
    local state
    state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
    [[ -n "$state" && "$state" != Z ]]
}

# True when pid $1 is alive and its command line contains $2 (guards against reused pids).
pid_is() {
    local pid="$1" name="$2"
    [[ -n "$pid" ]] && alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$name"
}

read_pid() { [[ -s "$1" ]] && cat "$1" || true; }

# Sends $2 to the process in pid file $1 (if it is a $3), waits up to $4 s for it to exit, then SIGKILLs it.
stop_pidfile() {
    local file="$1" signal="$2" name="$3" wait_s="$4" pid
    pid="$(read_pid "$file")"
    if pid_is "$pid" "$name"; then
        kill "-$signal" "$pid" 2>/dev/null || true
        local deadline=$((SECONDS + wait_s))
        while alive "$pid" && (( SECONDS < deadline )); do sleep 0.1; done
        if alive "$pid"; then
            say "pid $pid ($name) did not exit within ${wait_s} s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$file"
}

save_state() {
    {
        printf 'REPLICAS=%q\nBALANCER=%q\nBASE_PORT=%q\nCOLLM=%q\nTIMEOUT=%q\n' \
            "$REPLICAS" "$BALANCER" "$BASE_PORT" "$COLLM" "$TIMEOUT"
        printf 'CLOUD_ARGS=('
        if (( ${#CLOUD_ARGS[@]} > 0 )); then printf '%q ' "${CLOUD_ARGS[@]}"; fi
        printf ')\n'
    } >"$STATE"
}

load_state() {
    [[ -s "$STATE" ]] || die "no cluster in $DIR (run: scripts/cluster.sh up --dir $DIR)"
    # shellcheck disable=SC1090
    source "$STATE"
}

install_balancer() {
    local binary="$1" package="$2"
    command -v "$binary" >/dev/null 2>&1 && return 0
    say "$binary not found: installing Debian's $package with apt-get"
    local sudo=""
    if [[ "$(id -u)" -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || die "$binary is missing and installing it needs root (apt-get install $package)"
        sudo="sudo"
    fi
    $sudo apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$package" >/dev/null || die "apt-get install $package failed"
    command -v "$binary" >/dev/null 2>&1 || die "$package installed but $binary is not on PATH"
}

# Starts replica $1 on BASE_PORT+$1 and waits until it listens.
start_replica() {
    local k="$1" port=$((BASE_PORT + $1)) log="$DIR/replica-$1.log"
    port_open "$port" && die "port $port (replica $k) is already in use"
    echo "== $(date '+%F %T') start: $COLLM cloud --host $HOST --port $port ${CLOUD_ARGS[*]:-}" >>"$log"
    nohup "$COLLM" cloud --host "$HOST" --port "$port" ${CLOUD_ARGS[@]+"${CLOUD_ARGS[@]}"} >>"$log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$DIR/replica-$k.pid"
    local deadline=$((SECONDS + TIMEOUT))
    until port_open "$port"; do
        if ! alive "$pid"; then
            tail -n 20 "$log" >&2
            die "replica $k exited while starting (log: $log)"
        fi
        if (( SECONDS >= deadline )); then
            kill -KILL "$pid" 2>/dev/null || true
            tail -n 20 "$log" >&2
            die "replica $k did not listen on $HOST:$port within $TIMEOUT s (log: $log)"
        fi
        sleep 0.1
    done
    say "replica $k: pid $pid on $HOST:$port"
}

# Writes the balancer's configuration from the template in deploy/.
write_balancer_config() {
    local servers="" k port
    case "$BALANCER" in
        haproxy)
            for ((k = 1; k <= REPLICAS; k++)); do
                servers+="    server cloud$k $HOST:$((BASE_PORT + k))"$'\n'
            done
            # A stats socket (show stat: streams per replica in column stot) for operators and measurements.
            awk -v servers="$servers" -v bind="    bind $HOST:$BASE_PORT proto h2" -v stats="    stats socket $DIR/haproxy.sock mode 600 level user" '
                /^global/ { print; print stats; next }
                /# BEGIN replicas/ { print; printf "%s", servers; skip = 1; next }
                /# END replicas/ { skip = 0 }
                skip { next }
                /^[[:space:]]*bind / { print bind; next }
                { print }' "$REPO/deploy/haproxy.cfg" >"$DIR/haproxy.cfg"
            haproxy -c -q -f "$DIR/haproxy.cfg" || die "generated $DIR/haproxy.cfg is invalid"
            ;;
        nginx)
            for ((k = 1; k <= REPLICAS; k++)); do
                servers+="        server $HOST:$((BASE_PORT + k)) max_fails=1 fail_timeout=5s;"$'\n'
            done
            mkdir -p "$DIR/nginx-tmp"
            chmod 1777 "$DIR/nginx-tmp"  # nginx workers may run as another user when started by root
            awk -v servers="$servers" -v listen="        listen $HOST:$BASE_PORT http2;" '
                /# BEGIN replicas/ { print; printf "%s", servers; skip = 1; next }
                /# END replicas/ { skip = 0 }
                skip { next }
                /^[[:space:]]*listen / { print listen; next }
                { print }' "$REPO/deploy/nginx.conf" >"$DIR/nginx.conf"
            nginx -t -q -p "$DIR/" -c "$DIR/nginx.conf" -e "$DIR/nginx-error.log" || die "generated $DIR/nginx.conf is invalid"
            ;;
    esac
}

start_balancer() {
    port_open "$BASE_PORT" && die "port $BASE_PORT (balancer) is already in use"
    case "$BALANCER" in
        haproxy) haproxy -D -f "$DIR/haproxy.cfg" -p "$DIR/balancer.pid" >>"$DIR/balancer.log" 2>&1 ;;
        nginx)
            nginx -p "$DIR/" -c "$DIR/nginx.conf" -e "$DIR/nginx-error.log" >>"$DIR/balancer.log" 2>&1
            local deadline=$((SECONDS + 10))
            until [[ -s "$DIR/nginx.pid" ]] || (( SECONDS >= deadline )); do sleep 0.1; done
            cp "$DIR/nginx.pid" "$DIR/balancer.pid" 2>/dev/null || die "nginx wrote no pid file (see $DIR/nginx-error.log)"
            ;;
    esac
    local deadline=$((SECONDS + 10))
    until port_open "$BASE_PORT"; do
        (( SECONDS < deadline )) || die "$BALANCER did not listen on $HOST:$BASE_PORT within 10 s (see $DIR/balancer.log)"
        sleep 0.1
    done
    say "$BALANCER: pid $(read_pid "$DIR/balancer.pid") on $HOST:$BASE_PORT"
}

resolve_collm() {
    if [[ -z "$COLLM" ]]; then
        for candidate in "$REPO/.build/release/collm" "$REPO/.build/debug/collm"; do
            if [[ -x "$candidate" ]]; then COLLM="$candidate"; break; fi
        done
    fi
    [[ -n "$COLLM" && -x "$COLLM" ]] || die "collm binary not found (build it: swift build -c release --product collm; or pass --collm)"
    COLLM="$(cd "$(dirname "$COLLM")" && pwd)/$(basename "$COLLM")"
}

replica_index() {
    [[ -n "$TARGET" ]] && is_uint "$TARGET" && (( TARGET >= 1 && TARGET <= REPLICAS )) \
        || die "$command_name needs a replica number 1..$REPLICAS"
}

case "$command_name" in
    up)
        is_uint "$REPLICAS" && (( REPLICAS >= 1 && REPLICAS <= 64 )) || die "--replicas must be 1..64"
        is_uint "$BASE_PORT" && (( BASE_PORT >= 1 && BASE_PORT + REPLICAS <= 65535 )) || die "--base-port must leave room for the replicas' ports (1..65535)"
        case "$BALANCER" in
            haproxy) install_balancer haproxy haproxy ;;
            nginx) install_balancer nginx nginx-light ;;
            *) die "--balancer must be haproxy or nginx" ;;
        esac
        [[ -n "$TARGET" ]] && die "up takes no positional argument"
        if [[ -s "$STATE" ]] && ls "$DIR"/*.pid >/dev/null 2>&1; then
            die "a cluster is already up in $DIR (scripts/cluster.sh down --dir $DIR)"
        fi
        resolve_collm
        save_state
        write_balancer_config
        trap 'say "start failed: stopping what started"; "$0" down --dir "$DIR" >/dev/null 2>&1 || true' EXIT
        for ((k = 1; k <= REPLICAS; k++)); do start_replica "$k"; done
        start_balancer
        trap - EXIT
        say "up: $REPLICAS replicas behind $BALANCER; edges: --cloud $HOST:$BASE_PORT"
        echo "$HOST:$BASE_PORT"
        ;;
    down)
        [[ -s "$STATE" ]] || { say "nothing to stop in $DIR"; exit 0; }
        load_state
        stop_pidfile "$DIR/balancer.pid" TERM "$BALANCER" 10
        rm -f "$DIR/nginx.pid"
        for file in "$DIR"/replica-*.pid; do
            [[ -e "$file" ]] || continue
            stop_pidfile "$file" TERM collm 15
        done
        rm -f "$STATE"
        say "down: stopped $BALANCER and the replicas ($DIR)"
        ;;
    status)
        load_state
        pid="$(read_pid "$DIR/balancer.pid")"
        if pid_is "$pid" "$BALANCER"; then echo "balancer $BALANCER: pid $pid on $HOST:$BASE_PORT"; else echo "balancer $BALANCER: down"; fi
        for ((k = 1; k <= REPLICAS; k++)); do
            pid="$(read_pid "$DIR/replica-$k.pid")"
            if pid_is "$pid" collm; then
                echo "replica $k: pid $pid; $("$COLLM" health --cloud "$HOST:$((BASE_PORT + k))" --timeout 5 2>&1 | tail -n 1)"
            else
                echo "replica $k: down"
            fi
        done
        if [[ "$BALANCER" == haproxy && -S "$DIR/haproxy.sock" ]] && command -v python3 >/dev/null 2>&1; then
            python3 - "$DIR/haproxy.sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1]); s.sendall(b"show stat\n")
data = b""
while chunk := s.recv(65536): data += chunk
rows = [l.split(",") for l in data.decode().splitlines() if l and not l.startswith("#")]
head = data.decode().splitlines()[0].lstrip("# ").split(",")
stot, status = head.index("stot"), head.index("status")
print("haproxy streams per replica since start: " + ", ".join(
    f"{r[1]}={r[stot]} ({r[status]})" for r in rows if r[0] == "clouds" and r[1] not in ("BACKEND", "FRONTEND")))
PY
        fi
        ;;
    restart)
        load_state
        replica_index
        say "replica $TARGET: draining (SIGTERM)"
        stop_pidfile "$DIR/replica-$TARGET.pid" TERM collm "$TIMEOUT"
        start_replica "$TARGET"
        ;;
    kill)
        load_state
        replica_index
        pid="$(read_pid "$DIR/replica-$TARGET.pid")"
        pid_is "$pid" collm || die "replica $TARGET is not running"
        kill -KILL "$pid"
        deadline=$((SECONDS + 10))
        while alive "$pid" && (( SECONDS < deadline )); do sleep 0.05; done
        rm -f "$DIR/replica-$TARGET.pid"
        say "replica $TARGET: killed (pid $pid)"
        ;;
    start)
        load_state
        replica_index
        pid_is "$(read_pid "$DIR/replica-$TARGET.pid")" collm && die "replica $TARGET is already running"
        start_replica "$TARGET"
        ;;
    *) die "unknown command $command_name (up, down, status, restart, kill, start)" ;;
esac
