#!/usr/bin/env bash
# A throwaway RabbitMQ node for tests (the notification bus): one node, no
# plugins, every file under ROOT (data in ROOT/mnesia, logs in ROOT/log, the
# pid file in ROOT/run, the Erlang cookie in ROOT as HOME). Its Erlang
# distribution and its own epmd listen on loopback ports of their own, so it
# never meets a system RabbitMQ or epmd.
#
#   scripts/rabbitmq-server.sh start ROOT   create ROOT if it has no node, start it,
#                                           wait until it answers AMQP (same ports
#                                           and data on a restart; fails with the
#                                           logs' tail after START_TIMEOUT, 60 s)
#   scripts/rabbitmq-server.sh stop ROOT    stop the node and its epmd and wait for
#                                           them; nothing to do if none runs
#
# Ports: AMQP_PORT (default 17672), DIST_PORT (Erlang distribution, default
# 17673) and EPMD_PORT (default 17369), read at the first start and kept in
# ROOT/env. The node is ashbox-$AMQP_PORT@localhost; the user is
# AMQP_USER/AMQP_PASSWORD (default ashbox/ashbox-secret), with every
# permission on vhost /. Needs rabbitmq-server (scripts/test-deps.sh); runs as
# root or any user. To look inside a running node:
#   HOME=ROOT ERL_EPMD_PORT=$EPMD_PORT /usr/lib/rabbitmq/bin/rabbitmqctl \
#       -n ashbox-$AMQP_PORT@localhost list_queues
#
# A start takes 6-7 s, the first one (making the database) 7-8 s, a stop 1.2 s
# (`time scripts/rabbitmq-server.sh start /tmp/r`, 2 cores under a CI run's
# load of 4). Most of it is the node loading ~1000 modules: it burns ~5 s of CPU
# whatever the load, so expect ~4 s on an idle machine.
set -euo pipefail
cmd=${1:?usage: rabbitmq-server.sh start|stop ROOT}
ROOT=${2:?usage: rabbitmq-server.sh start|stop ROOT}
ROOT=$(realpath -m "$ROOT")
# The real start script: /usr/sbin/rabbitmq-server, Debian's wrapper, su's to
# the rabbitmq user and writes to /var/lib/rabbitmq and /var/log/rabbitmq.
RABBIT_BIN=/usr/lib/rabbitmq/bin
PID_FILE=$ROOT/run/rabbit.pid

alive() { # a zombie (exited, not yet reaped by a busy init) counts as gone
    local state
    state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ $state != Z* ]]
}

ours() { # the node or its start script, not a pid reused since by another program
    alive "$1" || return 1
    case $(ps -o comm= -p "$1" 2>/dev/null) in
    beam* | rabbitmq-server) return 0 ;;
    *) return 1 ;;
    esac
}

node_env() {
    # shellcheck disable=SC1091
    source "$ROOT/env"
    export HOME=$ROOT # erl reads and makes .erlang.cookie there
    export RABBITMQ_NODENAME=ashbox-$AMQP_PORT@localhost
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$AMQP_PORT
    export RABBITMQ_DIST_PORT=$DIST_PORT
    export ERL_EPMD_PORT=$EPMD_PORT ERL_EPMD_ADDRESS=127.0.0.1
    # Each default is under /etc/rabbitmq or /var/lib/rabbitmq otherwise.
    export RABBITMQ_CONF_ENV_FILE=$ROOT/rabbitmq-env.conf
    export RABBITMQ_CONFIG_FILE=$ROOT/rabbitmq.conf
    export RABBITMQ_ADVANCED_CONFIG_FILE=$ROOT/advanced.config
    export RABBITMQ_ENABLED_PLUGINS_FILE=$ROOT/enabled_plugins
    export RABBITMQ_PLUGINS_EXPAND_DIR=$ROOT/plugins-expand
    export RABBITMQ_MOTD_FILE=$ROOT/motd
    export RABBITMQ_MNESIA_BASE=$ROOT/mnesia
    export RABBITMQ_LOG_BASE=$ROOT/log RABBITMQ_LOGS=$ROOT/log/rabbit.log
    export RABBITMQ_PID_FILE=$PID_FILE
    export ERL_CRASH_DUMP=$ROOT/log/erl_crash.dump
    # The distribution listens on loopback only, as epmd does.
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

stop() {
    [[ -f $ROOT/env ]] || return 0
    node_env
    # SIGTERM stops the node cleanly (rabbit's signal handler); then the
    # start script's shell, which waits for it, exits too.
    local p
    for p in "$(cat "$PID_FILE" 2>/dev/null)" "$(cat "$ROOT/run/script.pid" 2>/dev/null)"; do
        [[ -n $p ]] && ours "$p" || continue
        kill "$p" 2>/dev/null || continue
        for _ in $(seq 1 150); do
            alive "$p" || break
            sleep 0.1
        done
        kill -9 "$p" 2>/dev/null || true
    done
    rm -f "$PID_FILE" "$ROOT/run/script.pid"
    # Our own epmd (erl started it, on EPMD_PORT): it refuses -kill while a
    # node is registered, and the node is gone now.
    epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1 || true
}

create() {
    mkdir -p "$ROOT/run" "$ROOT/log" "$ROOT/mnesia"
    cat > "$ROOT/env" <<EOC
AMQP_PORT=${AMQP_PORT:-17672}
DIST_PORT=${DIST_PORT:-17673}
EPMD_PORT=${EPMD_PORT:-17369}
EOC
    # Read by the node at its first boot only, when it makes the user.
    cat > "$ROOT/rabbitmq.conf" <<EOC
default_user = ${AMQP_USER:-ashbox}
default_pass = ${AMQP_PASSWORD:-ashbox-secret}
default_vhost = /
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
default_user_tags.administrator = true
log.console = false
log.file.level = info
# A test run fills the disk with images: under the default 50 MB left the
# node would block every publisher, and notification tests would hang.
disk_free_limit.absolute = 1MB
EOC
    echo '[].' > "$ROOT/enabled_plugins"
    touch "$ROOT/created"
}

amqp_answers() { # the server replies to an AMQP 0-9-1 header with Connection.Start (frame type 1)
    timeout 2 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1"
        printf "AMQP\x00\x00\x09\x01" >&3
        [[ $(head -c 1 <&3 | od -An -tx1) == " 01" ]]
    ' _ "$1" 2>/dev/null
}

start() {
    node_env
    local p
    p=$(cat "$PID_FILE" 2>/dev/null || true)
    if [[ -n $p ]] && ours "$p"; then
        echo "rabbitmq of $ROOT already runs (pid $p)" >&2
        return 0
    fi
    # Else the probe below would take another server for ours.
    if (exec 3<>"/dev/tcp/127.0.0.1/$AMQP_PORT") 2>/dev/null; then
        echo "port $AMQP_PORT is taken by another program" >&2
        return 1
    fi
    cd "$ROOT"
    nohup "$RABBIT_BIN/rabbitmq-server" </dev/null >>"$ROOT/log/startup.log" 2>&1 &
    local script=$!
    echo "$script" > "$ROOT/run/script.pid"
    local deadline=$((SECONDS + ${START_TIMEOUT:-60}))
    while ((SECONDS < deadline)) && alive "$script"; do
        amqp_answers "$AMQP_PORT" && return 0
        sleep 0.1
    done
    if alive "$script"; then
        echo "rabbitmq did not answer AMQP on port $AMQP_PORT in ${START_TIMEOUT:-60} s" >&2
    else
        echo "rabbitmq exited before answering AMQP on port $AMQP_PORT" >&2
    fi
    tail -n 30 "$ROOT"/log/*.log >&2 || true
    stop
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
    echo "usage: rabbitmq-server.sh start|stop ROOT" >&2
    exit 2
    ;;
esac
