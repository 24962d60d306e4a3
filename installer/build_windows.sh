#!/usr/bin/env bash
# Build the Windows installer (bootstrap, NSIS) on Linux with Debian's makensis.
#
#   installer/build_windows.sh [--out DIR]
#
# Payload: the project wheel (pip wheel --no-deps .), uv.exe from the `uv` wheel for win_amd64 on PyPI,
# the app extra's requirements, licence + notices, icon and the GUI launcher. At install time uv creates
# the environment (installer/windows/steps.nsh). Output: DIR/Avacast-VERSION-setup.exe and
# DIR/Avacast-VERSION-setup.makensis.log (makensis's own listing of every file it packed).
#
# Environment: UV_VERSION (default pinned below), AVACAST_UV_WHEEL (use this local uv win_amd64 wheel
# instead of downloading), TORCH_VERSION, AVACAST_CUDA_INDEX, AVACAST_CPU_INDEX, PYTHON.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
OUT="$REPO/dist/installer"
PYTHON="${PYTHON:-python3}"
UV_VERSION="${UV_VERSION:-0.13.9}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
CUDA_INDEX="${AVACAST_CUDA_INDEX:-https://download.pytorch.org/whl/cu128}"
CPU_INDEX="${AVACAST_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"

while [[ $# -gt 0 ]]; do
    case "$1" in
        --out) OUT="$(mkdir -p "$2" && cd "$2" && pwd)"; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "build_windows.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done
command -v makensis >/dev/null || { echo "build_windows.sh: makensis is missing (apt-get install nsis)" >&2; exit 2; }
mkdir -p "$OUT"

VERSION="$("$PYTHON" "$HERE/linux/project_version.py" "$REPO/pyproject.toml")"
# VIProductVersion wants four numbers: 0.1.0 -> 0.1.0.0, 1.2.3rc1 -> 1.2.3.0
VI_VERSION="$(echo "$VERSION" | grep -oE '^[0-9]+(\.[0-9]+){0,3}' | awk -F. '{printf "%d.%d.%d.%d", $1, $2, $3, $4}')"
STAGE="$REPO/build/installer/windows"
PAYLOAD="$STAGE/payload"
rm -rf "$PAYLOAD"
mkdir -p "$PAYLOAD" "$STAGE/dl"
log() { echo "[build_windows] $*"; }

log "building the project wheel"
"$PYTHON" -m pip wheel --quiet --no-deps --no-build-isolation -w "$PAYLOAD" "$REPO" >/dev/null 2>&1 \
    || "$PYTHON" -m pip wheel --quiet --no-deps -w "$PAYLOAD" "$REPO"
rm -rf "$REPO/build/lib" "$REPO/build/bdist."*
WHEEL="$(cd "$PAYLOAD" && ls avacast-"$VERSION"-*.whl)"

UV_WHEEL="${AVACAST_UV_WHEEL:-}"
if [[ -z "$UV_WHEEL" ]]; then
    UV_WHEEL="$(ls "$STAGE/dl"/uv-"$UV_VERSION"-*win_amd64.whl 2>/dev/null | head -1 || true)"
fi
if [[ -z "$UV_WHEEL" ]]; then
    log "downloading uv $UV_VERSION for win_amd64 from PyPI"
    "$PYTHON" -m pip download --quiet "uv==$UV_VERSION" --platform win_amd64 --only-binary=:all: \
        --no-deps -d "$STAGE/dl"
    UV_WHEEL="$(ls "$STAGE/dl"/uv-"$UV_VERSION"-*win_amd64.whl | head -1)"
fi
"$PYTHON" "$HERE/windows/extract_uv.py" "$UV_WHEEL" "$PAYLOAD/uv.exe"
"$PYTHON" "$HERE/windows/app_requirements.py" "$REPO/pyproject.toml" > "$PAYLOAD/requirements-app.txt"
cp "$HERE/LICENSE-GPL-3.0.txt" "$HERE/THIRD_PARTY_NOTICES.txt" "$HERE/assets/avacast.ico" \
    "$HERE/windows/launch.pyw" "$PAYLOAD/"

EXE="$OUT/Avacast-$VERSION-setup.exe"
LOG="$OUT/Avacast-$VERSION-setup.makensis.log"
log "compiling $EXE"
if ! makensis -V4 -WX -INPUTCHARSET UTF8 \
    "-DVERSION=$VERSION" "-DVI_VERSION=$VI_VERSION" "-DPAYLOAD=$PAYLOAD" "-DWHEEL=$WHEEL" \
    "-DTORCH_VERSION=$TORCH_VERSION" "-DCUDA_INDEX=$CUDA_INDEX" "-DCPU_INDEX=$CPU_INDEX" \
    "-DOUTFILE=$EXE" "$HERE/windows/avacast.nsi" > "$LOG" 2>&1; then
    tail -30 "$LOG" >&2
    echo "build_windows.sh: makensis failed; full log: $LOG" >&2
    exit 1
fi
log "$EXE ($(( $(stat -c %s "$EXE") / 1024 / 1024 )) MiB)"
