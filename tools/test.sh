#!/usr/bin/env bash
# The whole test suite: sets the workspace up when needed, checks style, runs every package's
# tests. Extra arguments go to pytest (e.g. tools/test.sh -k scheduler).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
tools/setup.sh
set +u
# shellcheck disable=SC1091
. "$root/env.sh"
set -u
# Whatever the caller's shell says, nothing under test sends discovery off this machine.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export QT_QPA_PLATFORM=offscreen  # widgets render without a screen
ruff check --quiet .
ruff format --check --quiet .
exec python -m pytest "$@"
