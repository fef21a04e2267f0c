#!/usr/bin/env bash
# Installs with apt-get what the tests need outside Python and is missing:
# PostgreSQL server binaries (initdb, pg_ctl), zstd, Ceph radosgw (the S3
# store's test server: a mon, an OSD and radosgw) and Swift SAIO (the Swift
# store's: proxy, account, container and object servers, memcached) and
# RabbitMQ (the notification bus). No-op when all are there.
set -euo pipefail
missing=()
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    missing+=(postgresql)
fi
if ! command -v zstd >/dev/null; then
    missing+=(zstd)
fi
for pair in radosgw:radosgw ceph-mon:ceph-mon ceph-osd:ceph-osd \
    swift-ring-builder:swift swift-proxy-server:swift-proxy \
    swift-account-server:swift-account swift-container-server:swift-container \
    swift-object-server:swift-object memcached:memcached curl:curl; do
    if ! command -v "${pair%%:*}" >/dev/null; then
        missing+=("${pair##*:}")
    fi
done
# Not /usr/sbin/rabbitmq-server: that wrapper su's to the rabbitmq user;
# scripts/rabbitmq-server.sh runs this one, the real start script.
if [[ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]]; then
    missing+=(rabbitmq-server)
fi
if ((${#missing[@]} == 0)); then
    exit 0
fi
echo "installing test dependencies: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
