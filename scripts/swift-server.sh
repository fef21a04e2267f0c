#!/usr/bin/env bash
# A throwaway Swift all-in-one for tests: proxy (tempauth, s3api), account,
# container and object servers with one replica on a directory under ROOT,
# and the memcached tempauth needs (REAL-PARTS.md §1.2).
#
#   scripts/swift-server.sh start ROOT   create the rings and configs if ROOT has none,
#                                        start, wait until auth answers (same ports
#                                        and data on a restart)
#   scripts/swift-server.sh stop ROOT    stop every server of ROOT and wait for them
#
# Ports: PROXY_PORT (default 18080), OBJ_PORT, CONT_PORT, ACCT_PORT (16200-16202),
# MC_PORT (memcached, 11211), read at the first start and kept in ROOT/env.
# Users (tempauth): test:tester/testing (.admin) and test2:tester2/testing2.
# Needs the Debian swift packages and memcached (scripts/test-deps.sh) and root.
set -euo pipefail
cmd=${1:?usage: swift-server.sh start|stop ROOT}
ROOT=${2:?usage: swift-server.sh start|stop ROOT}
ROOT=$(realpath -m "$ROOT")
ETC=$ROOT/etc DEV=$ROOT/srv RUN=$ROOT/run LOG=$ROOT/log
SERVERS=(proxy object container account)

alive() { # a zombie (exited, not yet reaped by a busy init) counts as gone
    local state
    state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ $state != Z* ]]
}

stop() {
    local name pids=() p
    for name in "${SERVERS[@]}" object-updater memcached; do
        [[ -f $RUN/$name.pid ]] || continue
        p=$(cat "$RUN/$name.pid")
        kill "$p" 2>/dev/null && pids+=("$p")
        rm -f "$RUN/$name.pid"
    done
    for p in "${pids[@]}"; do
        for _ in $(seq 1 100); do
            alive "$p" || break
            sleep 0.1
        done
        kill -9 "$p" 2>/dev/null || true
    done
}

create() {
    mkdir -p "$ETC" "$DEV/d1" "$RUN" "$LOG"
    cat > "$ROOT/env" <<EOC
PROXY_PORT=${PROXY_PORT:-18080}
OBJ_PORT=${OBJ_PORT:-16200}
CONT_PORT=${CONT_PORT:-16201}
ACCT_PORT=${ACCT_PORT:-16202}
MC_PORT=${MC_PORT:-11211}
EOC
    # shellcheck disable=SC1091
    source "$ROOT/env"
    cat > "$ETC/swift.conf" <<EOC
[swift-hash]
swift_hash_path_suffix = ashbox-suffix
swift_hash_path_prefix = ashbox-prefix
[storage-policy:0]
name = Policy-0
default = yes
EOC
    local common="[DEFAULT]
bind_ip = 127.0.0.1
swift_dir = $ETC
devices = $DEV
mount_check = false
user = swift
workers = 1
log_level = INFO"
    local t name port
    for t in object:$OBJ_PORT container:$CONT_PORT account:$ACCT_PORT; do
        name=${t%%:*} port=${t##*:}
        cat > "$ETC/$name-server.conf" <<EOC
$common
bind_port = $port
[pipeline:main]
pipeline = $name-server
[app:$name-server]
use = egg:swift#$name
EOC
    done
    # A container listing update that times out under load is queued on the
    # object server; the updater sends it, as in any Swift deployment.
    printf '[object-updater]\ninterval = 1\nrecon_cache_path = %s\n' "$RUN" >>"$ETC/object-server.conf"
    cat > "$ETC/proxy-server.conf" <<EOC
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PROXY_PORT
swift_dir = $ETC
user = swift
workers = ${PROXY_WORKERS:-1}
log_level = INFO
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MC_PORT
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:s3api]
use = egg:swift#s3api
location = us-east-1
[filter:tempauth]
use = egg:swift#tempauth
user_admin_admin = admin .admin .reseller_admin
user_test_tester = testing .admin
user_test2_tester2 = testing2 .admin
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
EOC
    (
        cd "$ETC"
        for t in object:$OBJ_PORT container:$CONT_PORT account:$ACCT_PORT; do
            name=${t%%:*} port=${t##*:}
            swift-ring-builder "$name.builder" create 10 1 1 >/dev/null
            swift-ring-builder "$name.builder" add "r1z1-127.0.0.1:$port/d1" 1 >/dev/null
            swift-ring-builder "$name.builder" rebalance >/dev/null
        done
    )
    chown -R swift:swift "$ROOT"
    touch "$ROOT/created"
}

start() {
    # shellcheck disable=SC1091
    source "$ROOT/env"
    # Not memcached -d -P: it writes its pid file after dropping to 'memcache'.
    nohup memcached -u memcache -l 127.0.0.1 -p "$MC_PORT" -m 64 >"$LOG/memcached.log" 2>&1 &
    echo $! >"$RUN/memcached.pid"
    local name
    for name in "${SERVERS[@]}"; do
        nohup "swift-$name-server" "$ETC/$name-server.conf" -v >>"$LOG/$name.log" 2>&1 &
        echo $! >"$RUN/$name.pid"
    done
    nohup swift-object-updater "$ETC/object-server.conf" -v >>"$LOG/object-updater.log" 2>&1 &
    echo $! >"$RUN/object-updater.pid"
    for _ in $(seq 1 300); do
        if curl -fsS "http://127.0.0.1:$PROXY_PORT/healthcheck" >/dev/null 2>&1 &&
            curl -fsS -o /dev/null -H 'X-Auth-User: test:tester' -H 'X-Auth-Key: testing' \
                "http://127.0.0.1:$PROXY_PORT/auth/v1.0" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "swift did not answer on port $PROXY_PORT" >&2
    tail -n 30 "$LOG"/*.log >&2 || true
    return 1
}

case $cmd in
start)
    if [[ ! -f $ROOT/created ]]; then
        stop 2>/dev/null || true
        rm -rf "$ROOT"
        create
    fi
    start
    ;;
stop) stop ;;
*)
    echo "usage: swift-server.sh start|stop ROOT" >&2
    exit 2
    ;;
esac
