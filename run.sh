#!/usr/bin/env bash
# One entry point for a fresh Debian/Ubuntu machine. Idempotent: a second run skips what is done.
#   ./run.sh main   set up, then run the main experiment (softmax-only study)
#   ./run.sh test   set up, then run the test suite
#   ./run.sh notebooks  set up (with Jupyter), then open the notebooks in JupyterLab
#   ./run.sh setup  set up only: Fashion-MNIST from Debian, a .venv with minidl and its dev tools
# Extra arguments are passed on (e.g. ./run.sh main --quick, ./run.sh test -k gradients).
# MINIDL_EXTRAS chooses the pip extras to install (default: dev).
set -euo pipefail
cd "$(dirname "$0")"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  # Installs Debian packages that are missing; runs `apt-get update` at most once per call.
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "run.sh: installing ${missing[*]} (apt-get)" >&2
  as_root apt-get update -q
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q "${missing[@]}"
}

setup() {
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "run.sh: minidl needs Python 3.11 or newer; python3 is $(python3 -V 2>&1)" >&2; exit 1; }
  if command -v apt-get >/dev/null 2>&1; then
    apt_install dataset-fashion-mnist
    python3 -m venv --help >/dev/null 2>&1 && python3 -c "import ensurepip" 2>/dev/null \
      || apt_install python3-venv
  else
    echo "run.sh: no apt-get here; minidl will download Fashion-MNIST into ~/.cache on first use" >&2
  fi
  [ -x .venv/bin/python ] || python3 -m venv .venv
  local extras="${MINIDL_EXTRAS:-dev}"
  local stamp=".venv/.minidl-installed"
  local want
  want="$(sha256sum pyproject.toml | cut -c1-16) $extras"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "run.sh: installing minidl and its [$extras] extras into .venv (pip)" >&2
    .venv/bin/python -m pip install -q --upgrade pip
    # Editable "compat" mode puts the checkout itself on the venv's path (a .pth file), so
    # `experiments` and `benchmarks`, which the wheel does not ship, import from anywhere in this
    # venv: notebooks/ (whose kernel starts there) and spawned or Dask workers alike.
    .venv/bin/python -m pip install -q -e ".[$extras]" --config-settings editable_mode=compat
    echo "$want" > "$stamp"
  fi
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  setup) setup ;;
  main) setup; exec .venv/bin/python -m experiments.softmax_only "$@" ;;
  test) setup; exec .venv/bin/python -m pytest "$@" ;;
  notebooks)
    case ",${MINIDL_EXTRAS:-dev}," in *,notebooks,*) ;; *) export MINIDL_EXTRAS="${MINIDL_EXTRAS:-dev},notebooks" ;; esac
    setup; exec .venv/bin/jupyter lab --notebook-dir=notebooks "$@" ;;
  *) echo "usage: ./run.sh main|test|notebooks|setup [args...]" >&2; exit 2 ;;
esac
