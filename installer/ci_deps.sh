#!/usr/bin/env bash
# System tools the installer tests need (Debian/Ubuntu): makensis, 7z, dpkg-deb, readelf,
# desktop-file-validate. Idempotent; CI runs it before the tests.
set -euo pipefail
need=()
command -v makensis >/dev/null || need+=(nsis)
command -v 7z >/dev/null || need+=(p7zip-full)
command -v desktop-file-validate >/dev/null || need+=(desktop-file-utils)
command -v readelf >/dev/null || need+=(binutils)
command -v dpkg-deb >/dev/null || need+=(dpkg)
if [[ ${#need[@]} -gt 0 ]]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
