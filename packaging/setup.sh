#!/usr/bin/env bash
# Set up Lightbox in ./.venv: Debian packages (when root or sudo is available), then the
# Python packages from pyproject.toml.
#   bash packaging/setup.sh          to run Lightbox
#   bash packaging/setup.sh --test   also what the tests need (DCMTK, Orthanc, Xvfb, ...)
set -euo pipefail
cd "$(dirname "$0")/.."
lists=(packaging/apt-runtime.txt)
extra=""
if [[ "${1:-}" == --test ]]; then
  lists+=(packaging/apt-test.txt)
  extra="[test]"
fi
mapfile -t pkgs < <(grep -hv '^\s*#' "${lists[@]}" | grep -v '^\s*$')
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  if command -v apt-get >/dev/null; then
    SUDO=""
    [[ $(id -u) -eq 0 ]] || SUDO="sudo"
    echo "installing Debian packages: ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "please install these packages with your package manager: ${missing[*]}" >&2
  fi
fi
PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e ".${extra}"
echo "Lightbox is set up: .venv/bin/lightbox (GUI) or .venv/bin/lightbox node (headless)" >&2
