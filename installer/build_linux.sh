#!/usr/bin/env bash
# Build the Linux bundle of Avacast: a PyInstaller one-folder bundle, then a .tar.gz and a .deb.
#
#   installer/build_linux.sh [--cuda] [--out DIR] [--python PY]
#
#   --cuda     bundle the CUDA build of torch (NVIDIA GPUs; ~4 GB more). Default: the CPU build.
#   --out DIR  where the artefacts go (default: dist/installer)
#   --python   the interpreter for the build venv (default: python3; needs a shared libpython)
#
# The build uses its own venv (build/installer/venv-cpu or venv-cuda) so nothing in the developer venv
# leaks into the bundle. Torch comes first, from the index matching the variant; the project and its `app`
# extra come next, from this checkout.
#   CPU : pip install torch==$TORCH_VERSION            (the CPU wheel; on this workplace it lies on disk)
#   CUDA: pip install torch==$TORCH_VERSION --index-url https://download.pytorch.org/whl/cu128
# Output: DIR/avacast-VERSION-linux-x86_64[-cuda]/ (the bundle), .tar.gz and avacast_VERSION_amd64.deb.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
VARIANT=cpu
OUT="$REPO/dist/installer"
PYTHON=python3
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
CUDA_INDEX="${AVACAST_CUDA_INDEX:-https://download.pytorch.org/whl/cu128}"

while [[ $# -gt 0 ]]; do
    case "$1" in
        --cuda) VARIANT=cuda; shift ;;
        --out) OUT="$(mkdir -p "$2" && cd "$2" && pwd)"; shift 2 ;;
        --python) PYTHON="$2"; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "build_linux.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done

for tool in dpkg-deb readelf strip tar; do
    command -v "$tool" >/dev/null || { echo "build_linux.sh: '$tool' is missing (apt-get install dpkg binutils tar)" >&2; exit 2; }
done

VERSION="$("$PYTHON" "$HERE/linux/project_version.py" "$REPO/pyproject.toml")"
SUFFIX=$([[ $VARIANT == cuda ]] && echo "-cuda" || echo "")
NAME="avacast-$VERSION-linux-x86_64$SUFFIX"
WORK="$REPO/build/installer"
VENV="$WORK/venv-$VARIANT"
mkdir -p "$WORK" "$OUT"
log() { echo "[build_linux] $*"; }

# 1. Build venv: torch for the variant, then the project with the app extra, then PyInstaller.
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating build venv $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --quiet)
if [[ $VARIANT == cuda ]]; then
    "${PIP[@]}" "torch==$TORCH_VERSION" --index-url "$CUDA_INDEX"
else
    "${PIP[@]}" "torch==$TORCH_VERSION"
fi
"${PIP[@]}" "pyinstaller>=6.10" "$REPO[app]"
# The version rarely changes between builds, so pip would keep a stale copy: always reinstall the project.
"${PIP[@]}" --no-deps --force-reinstall "$REPO"
# A stale wheel build dir would let deleted modules survive into the bundle.
rm -rf "$REPO/build/lib" "$REPO/build/bdist."*

# 2. PyInstaller one-folder bundle.
log "running PyInstaller ($VARIANT)"
rm -rf "$WORK/dist" "$WORK/pyi"
(cd "$WORK" && "$VENV/bin/python" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$WORK/dist" --workpath "$WORK/pyi" "$HERE/avacast.spec")
BUNDLE="$OUT/$NAME"
rm -rf "$BUNDLE"
mv "$WORK/dist/avacast" "$BUNDLE"
SIZE_RAW=$(du -sb "$BUNDLE" | cut -f1)

# 3. Strip debug sections (only from files that have them: stripping everything is slow and gains
#    nothing on wheels that were stripped upstream), then add licences and notices.
"$VENV/bin/python" "$HERE/linux/strip_debug.py" "$BUNDLE"
"$VENV/bin/python" "$HERE/linux/collect_licenses.py" "$VENV" "$BUNDLE/licenses"
cp "$HERE/THIRD_PARTY_NOTICES.txt" "$HERE/LICENSE-GPL-3.0.txt" "$BUNDLE/"
SIZE_BUNDLE=$(du -sb "$BUNDLE" | cut -f1)

# 4. tar.gz (top folder = $NAME, so it unpacks into one directory).
log "packing $NAME.tar.gz"
tar -C "$OUT" -czf "$OUT/$NAME.tar.gz" --owner=0 --group=0 "$NAME"

# 5. .deb: /opt/avacast + /usr/bin/avacast symlink + desktop entry + icon; Depends from the bundle's ELFs.
"$HERE/linux/make_deb.sh" "$BUNDLE" "$VERSION" "$OUT" "$VARIANT"

mb() { echo "$(( $1 / 1024 / 1024 )) MiB"; }
log "sizes ($VARIANT):"
log "  bundle before strip  $(mb "$SIZE_RAW")"
log "  bundle               $(mb "$SIZE_BUNDLE")  $BUNDLE"
log "  tar.gz               $(mb "$(stat -c %s "$OUT/$NAME.tar.gz")")  $OUT/$NAME.tar.gz"
for deb in "$OUT"/avacast*_"$VERSION"_amd64.deb; do
    log "  .deb                 $(mb "$(stat -c %s "$deb")")  $deb"
done
