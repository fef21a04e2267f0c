#!/usr/bin/env bash
# A throwaway Ceph cluster serving S3 for tests: one mon, one OSD and radosgw,
# with no cephx, everything under ROOT (REAL-PARTS.md §1.5). The OSD keeps its
# data in BlueStore on a sparse file, so a restart keeps the objects (with
# OSD_STORE=memstore a restarted cluster came back without its pools' data:
# RGW then hangs).
#
#   scripts/rgw-server.sh start ROOT   create the cluster if ROOT has none, start it,
#                                      wait until S3 answers (same ports and data on
#                                      a restart)
#   scripts/rgw-server.sh stop ROOT    stop every daemon of ROOT and wait for them
#
# Ports: RGW_PORT (S3, default 17480), MON_PORT (default 13300), read at the
# first start and kept in ROOT/env for later starts. The S3 user is
# ACCESS_KEY/SECRET_KEY (default ashbox/ashbox-secret). Needs radosgw, ceph-mon
# and ceph-osd (scripts/test-deps.sh) and root.
set -euo pipefail
cmd=${1:?usage: rgw-server.sh start|stop ROOT}
C=${2:?usage: rgw-server.sh start|stop ROOT}
C=$(realpath -m "$C")
export CEPH_CONF=$C/ceph.conf

pid_of() { [[ -f $C/run/$1.pid ]] && cat "$C/run/$1.pid" || true; }

alive() { # a zombie (exited, not yet reaped by a busy init) counts as gone
    local state
    state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ $state != Z* ]]
}

stop() {
    # In order, each waited for: an OSD stopped after its mon waits for it in
    # vain. radosgw keeps nothing of its own (every object is in RADOS) and
    # lingers ~5 s on SIGTERM (its lifecycle thread's sleep): it gets 1 s.
    local name p wait
    for name in client.rgw.a osd.0 mon.a; do
        p=$(pid_of "$name")
        [[ -n $p ]] && kill "$p" 2>/dev/null || continue
        wait=100
        [[ $name == client.rgw.a ]] && wait=10
        for _ in $(seq 1 $wait); do
            alive "$p" || break
            sleep 0.1
        done
        kill -9 "$p" 2>/dev/null || true
    done
    rm -f "$C"/run/*.pid
}

create() {
    mkdir -p "$C"/mon/ceph-a "$C"/osd/ceph-0 "$C"/run "$C"/log "$C"/rgw
    local fsid
    fsid=$(cat /proc/sys/kernel/random/uuid)
    cat > "$C/env" <<EOC
RGW_PORT=${RGW_PORT:-17480}
MON_PORT=${MON_PORT:-13300}
EOC
    # shellcheck disable=SC1091
    source "$C/env"
    cat > "$CEPH_CONF" <<EOC
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$MON_PORT
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
# with auth none, radosgw's default 'secure' mon client mode hangs it forever
ms mon client mode = crc
ms client mode = crc
ms mon cluster mode = crc
ms cluster mode = crc
ms mon service mode = crc
ms service mode = crc
mon warn on insecure global id reclaim allowed = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
run dir = $C/run
admin socket = $C/run/\$name.asok
log file = $C/log/\$name.log
pid file = $C/run/\$name.pid
mon data = $C/mon/\$cluster-\$id
osd data = $C/osd/\$cluster-\$id
osd objectstore = ${OSD_STORE:-bluestore}
memstore device bytes = 2147483648
bluestore block create = true
bluestore block size = 10737418240
bluestore block path = $C/osd/block
bluestore block db create = false
bluestore block wal create = false
osd max object name len = 460
osd max object namespace len = 64
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw data = $C/rgw
rgw dns name = localhost
EOC
    monmaptool --create --addv a "[v2:127.0.0.1:$MON_PORT]" --fsid "$fsid" "$C/monmap" >/dev/null
    ceph-mon --mkfs -i a --monmap "$C/monmap" 2>>"$C/log/mkfs.log"
    ceph-mon -i a 2>>"$C/log/start.log"
    local uuid id
    uuid=$(cat /proc/sys/kernel/random/uuid)
    id=$(ceph osd new "$uuid")
    ceph-osd -i "$id" --mkfs --osd-uuid "$uuid" 2>>"$C/log/mkfs.log"
    ceph-osd -i "$id" 2>>"$C/log/start.log"
    radosgw -n client.rgw.a 2>>"$C/log/start.log"
    wait_ready
    radosgw-admin user create --uid=ashbox --display-name=ashbox \
        --access-key="${ACCESS_KEY:-ashbox}" --secret="${SECRET_KEY:-ashbox-secret}" >/dev/null
    touch "$C/created"
}

wait_ready() {
    # shellcheck disable=SC1091
    source "$C/env"
    for _ in $(seq 1 300); do
        curl -fs -o /dev/null "http://127.0.0.1:$RGW_PORT/" && return 0
        sleep 0.2
    done
    echo "radosgw did not answer on port $RGW_PORT" >&2
    tail -n 30 "$C"/log/*.log >&2 || true
    return 1
}

case $cmd in
start)
    if [[ ! -f $C/created ]]; then
        stop 2>/dev/null || true
        rm -rf "$C"
        create
    else
        ceph-mon -i a 2>>"$C/log/start.log"
        ceph-osd -i 0 2>>"$C/log/start.log"
        radosgw -n client.rgw.a 2>>"$C/log/start.log"
        wait_ready
    fi
    ;;
stop) stop ;;
*)
    echo "usage: rgw-server.sh start|stop ROOT" >&2
    exit 2
    ;;
esac
