#!/usr/bin/env bash
# Pack a PyInstaller bundle folder as a .deb.
#
#   make_deb.sh BUNDLE_DIR VERSION OUT_DIR [cpu|cuda]
#
# Layout: /opt/avacast/ (the bundle), /usr/bin/avacast -> ../../opt/avacast/avacast,
# /usr/share/applications/avacast.desktop, hicolor icons, /usr/share/doc/avacast/copyright.
# Depends/Recommends come from the bundle's ELF files (deb_depends.py). The CUDA variant is a separate
# package (avacast-cuda) that replaces the CPU one, since both own /opt/avacast.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ASSETS="$HERE/../assets"
BUNDLE="$(cd "$1" && pwd)"
VERSION="$2"
OUT="$(mkdir -p "$3" && cd "$3" && pwd)"
VARIANT="${4:-cpu}"
PYTHON="${PYTHON:-python3}"

[[ -x "$BUNDLE/avacast" ]] || { echo "make_deb.sh: $BUNDLE/avacast is not an executable bundle" >&2; exit 2; }
PACKAGE=avacast
OTHER=avacast-cuda
if [[ $VARIANT == cuda ]]; then PACKAGE=avacast-cuda; OTHER=avacast; fi

DEPS="$("$PYTHON" "$HERE/deb_depends.py" "$BUNDLE")"
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
ROOT="$STAGE/root"
mkdir -p "$ROOT/DEBIAN" "$ROOT/opt" "$ROOT/usr/bin" "$ROOT/usr/share/applications" \
    "$ROOT/usr/share/icons/hicolor/scalable/apps" "$ROOT/usr/share/icons/hicolor/256x256/apps" \
    "$ROOT/usr/share/doc/$PACKAGE"
cp -a "$BUNDLE" "$ROOT/opt/avacast"
ln -s ../../opt/avacast/avacast "$ROOT/usr/bin/avacast"
install -m 644 "$HERE/avacast.desktop" "$ROOT/usr/share/applications/avacast.desktop"
install -m 644 "$ASSETS/avacast.svg" "$ROOT/usr/share/icons/hicolor/scalable/apps/avacast.svg"
install -m 644 "$ASSETS/avacast.png" "$ROOT/usr/share/icons/hicolor/256x256/apps/avacast.png"
{
    echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    echo "Upstream-Name: Avacast"
    echo
    echo "Files: *"
    echo "License: GPL-3.0-or-later"
    echo " On Debian systems the full text is in /usr/share/common-licenses/GPL-3; it is also in"
    echo " /opt/avacast/LICENSE-GPL-3.0.txt. Bundled third-party components and their licences:"
    echo " /opt/avacast/THIRD_PARTY_NOTICES.txt and /opt/avacast/licenses/."
} > "$ROOT/usr/share/doc/$PACKAGE/copyright"

SIZE_KB=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
{
    echo "Package: $PACKAGE"
    echo "Version: $VERSION"
    echo "Section: video"
    echo "Priority: optional"
    echo "Architecture: amd64"
    echo "Maintainer: Avacast developers <avacast@users.noreply.github.com>"
    echo "Installed-Size: $SIZE_KB"
    echo "$DEPS"
    echo "Conflicts: $OTHER"
    echo "Replaces: $OTHER"
    echo "Description: talking portrait from your microphone, as a virtual webcam"
    echo " Avacast animates a portrait of a face you choose from your live voice, in"
    echo " real time on an NVIDIA GPU, shows it in a preview window and sends it to a"
    echo " virtual webcam for video calls. It also renders portrait + speech to MP4."
    [[ $VARIANT == cuda ]] && echo " This package bundles the CUDA build of PyTorch (NVIDIA driver for CUDA 12.x)." || \
        echo " This package bundles the CPU build of PyTorch (works everywhere, slowly)."
} > "$ROOT/DEBIAN/control"
# Refresh desktop and icon caches where the tools exist; never fail the install over a cache.
cat > "$ROOT/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    command -v update-desktop-database >/dev/null && update-desktop-database -q /usr/share/applications || true
    command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t /usr/share/icons/hicolor || true
fi
exit 0
EOF
cp "$ROOT/DEBIAN/postinst" "$ROOT/DEBIAN/postrm"
sed -i 's/\[ "$1" = configure \]/[ "$1" = remove ] || [ "$1" = purge ]/' "$ROOT/DEBIAN/postrm"
chmod 755 "$ROOT/DEBIAN/postinst" "$ROOT/DEBIAN/postrm"

DEB="$OUT/${PACKAGE}_${VERSION}_amd64.deb"
# xz (default) gives a ~30% smaller download than gzip on torch/Qt libraries but takes ~10 min on 2
# cores; DEB_COMPRESS=gzip is for quick test builds.
dpkg-deb --root-owner-group -Z"${DEB_COMPRESS:-xz}" --build "$ROOT" "$DEB" >/dev/null
echo "[make_deb] $DEB"
