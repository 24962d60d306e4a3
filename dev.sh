#!/usr/bin/env bash
# Developer entry point. On a fresh machine it installs everything it needs, then:
#   ./dev.sh app     launch Avacast (shipped default model and portrait)
#   ./dev.sh test    run the test suite (CPU, tiny preset)
#   ./dev.sh setup   only install
# Environment: AVACAST_TORCH (default "torch==2.13.0": the CPU build; for NVIDIA GPUs see README).
set -euo pipefail
cd "$(dirname "$0")"
VENV=${AVACAST_VENV:-.venv}
APT_PACKAGES=(libportaudio2 libasound2-plugins pulseaudio pulseaudio-utils espeak-ng xvfb xauth
  libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libglib2.0-0
  libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-xinerama0
  libxcb-xkb1 libxcb-shape0 libxcb-randr0 nsis p7zip-full desktop-file-utils)

install_system() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "dev.sh: please install these system packages: ${missing[*]}" >&2
  fi
}

install_python() {
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  local stamp="$VENV/.avacast-installed" want
  want=$(cat pyproject.toml dev.sh | sha256sum | cut -c1-16)
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # shellcheck disable=SC2086  # AVACAST_TORCH may carry pip options (an index URL): split on purpose
  "$VENV/bin/python" -m pip install -q ${AVACAST_TORCH:-torch==2.13.0}
  "$VENV/bin/python" -m pip install -q -e ".[app,train,dev]"
  echo "$want" > "$stamp"
}

cmd=${1:-app}; shift || true
case "$cmd" in
  setup) install_system; install_python ;;
  app) install_system; install_python; exec "$VENV/bin/avacast" "$@" ;;
  test)
    install_system; install_python
    "$VENV/bin/lint-imports" --config pyproject.toml
    set +e; "$VENV/bin/python" -m pytest -q "$@"; code=$?; set -e
    [ $code -eq 5 ] && { echo "dev.sh: no tests were collected" >&2; exit 1; }
    exit $code ;;
  *) echo "usage: ./dev.sh [app|test|setup] [args...]" >&2; exit 2 ;;
esac
