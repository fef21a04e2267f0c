#!/usr/bin/env bash
# Installs with apt-get what the tests need outside Python and is missing:
# PostgreSQL server binaries (initdb, pg_ctl) and zstd. No-op when all are there.
set -euo pipefail
missing=()
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    missing+=(postgresql)
fi
if ! command -v zstd >/dev/null; then
    missing+=(zstd)
fi
if ((${#missing[@]} == 0)); then
    exit 0
fi
echo "installing test dependencies: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
