#!/usr/bin/env bash
# The main job: the published 11-job lab day, live, on the simulated demo lab (see README).
# Sets the workspace up when needed; extra arguments go to the demo (e.g. --time-scale 600).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
tools/setup.sh
set +u
# shellcheck disable=SC1091
. "$root/env.sh"
set -u
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"  # the Gantt is written to a file
exec python -m octopus_client.demo "$@"
