#!/usr/bin/env bash
# Builds the two venvs the conformance tests run outside the project's own venv:
#   .venv-conformance-keystone  keystone + uWSGI   (tests/keystone_server.py)
#   .venv-conformance-tempest   tempest + cinder-tempest-plugin   (tests/conformance/)
# Two venvs, built at once: uWSGI compiles from its sdist for about a minute on one
# core while the other core installs Tempest, and neither venv drags in the
# other's dependencies (they differ on cryptography, at least).
# Idempotent: a venv whose stamp names the same requirements is left alone.
# Runs on a fresh Debian as root: installs a C compiler and Python's headers
# with apt-get when uWSGI's build would miss them.
# Usage: scripts/conformance-venv.sh [REPO_DIR]   (default: this script's repo)
set -euo pipefail

cd "${1:-$(dirname "$0")/..}"
PYTHON=${PYTHON:-python3}
KEYSTONE_VENV=.venv-conformance-keystone
TEMPEST_VENV=.venv-conformance-tempest
KEYSTONE_REQS=(keystone==30.0.0 uWSGI==2.0.31)
TEMPEST_REQS=(tempest==47.0.0 cinder-tempest-plugin==1.23.0)
STAMP=.ashbox-conformance-installed

fresh() { # venv, requirements...: true when the venv is built for exactly these
    local venv=$1
    shift
    [[ -x $venv/bin/python && -f $venv/$STAMP && "$(cat "$venv/$STAMP")" == "$*" ]]
}

build() { # venv, requirements...
    local venv=$1
    shift
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
    echo "$*" >"$venv/$STAMP"
}

needs_apt=()
if ! fresh "$KEYSTONE_VENV" "${KEYSTONE_REQS[@]}"; then
    command -v gcc >/dev/null || needs_apt+=(gcc libc6-dev)
    headers=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
    [[ -f $headers/Python.h ]] || needs_apt+=(python3-dev)
fi
if ! fresh "$KEYSTONE_VENV" "${KEYSTONE_REQS[@]}" || ! fresh "$TEMPEST_VENV" "${TEMPEST_REQS[@]}"; then
    # Debian's python3 imports ensurepip but cannot run it without python3-venv: try it.
    probe=$(mktemp -d)
    "$PYTHON" -m venv "$probe/venv" >/dev/null 2>&1 || needs_apt+=(python3-venv)
    rm -rf "$probe"
fi
if ((${#needs_apt[@]})); then
    echo "installing conformance build dependencies: ${needs_apt[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${needs_apt[@]}"
fi

pids=()
names=()
for pair in "KEYSTONE" "TEMPEST"; do
    venv_var=${pair}_VENV
    reqs_var=${pair}_REQS[@]
    venv=${!venv_var}
    reqs=("${!reqs_var}")
    if fresh "$venv" "${reqs[@]}"; then
        continue
    fi
    echo "building $venv: ${reqs[*]}" >&2
    build "$venv" "${reqs[@]}" >"$venv.log" 2>&1 &
    pids+=($!)
    names+=("$venv")
done

failed=0
for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
        echo "building ${names[$i]} failed; the end of ${names[$i]}.log:" >&2
        grep -v 'is ignored: it is neither a file nor a directory' "${names[$i]}.log" | tail -n 30 >&2
        failed=1
    else
        rm -f "${names[$i]}.log"
    fi
done
exit $failed
