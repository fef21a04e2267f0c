#!/usr/bin/env bash
# Creates the virtual environment DIR (default .venv) with python3 >= 3.11.
# Debian's python3 cannot make one without python3-venv: install it when missing.
set -euo pipefail
dir=${1:-.venv}
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "ashbox needs python3 >= 3.11, found $(python3 --version 2>&1)" >&2
    exit 1
}
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    apt-get update -qq
    version=$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python${version}-venv" ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
fi
python3 -m venv "$dir"
