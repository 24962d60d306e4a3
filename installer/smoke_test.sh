#!/usr/bin/env bash
# Smoke-test a built Linux package from its installed copy, the way a user would run it.
#
#   installer/smoke_test.sh PACKAGE [--allow-missing]
#
# PACKAGE is a .deb (extracted with dpkg-deb -x into a temporary root; run through its /usr/bin symlink)
# or a .tar.gz (unpacked into a temporary folder). Then, offscreen (QT_QPA_PLATFORM=offscreen) and with
# HOME pointing into the temporary root:
#   1. `avacast --help` exits 0
#   2. `avacast app --self-test` exits 0
#   3. `avacast render` with the shipped default model (and default portrait when one ships, else a
#      generated one) turns a generated 2 s wav into an MP4 with exactly 50 frames (25 fps)
#   4. nothing was written inside the install folder (user data goes under platformdirs only)
# --allow-missing: skip 2/3 (loudly) when this build has no `app` / `render` command yet, and render
#   with the untrained tiny preset when it ships no default model yet.
# Frame counting uses PyAV from $PYTHON (default: the checkout's .venv, else python3).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
PACKAGE="${1:?usage: smoke_test.sh PACKAGE.deb|PACKAGE.tar.gz [--allow-missing]}"
ALLOW_MISSING=0
[[ "${2:-}" == "--allow-missing" ]] && ALLOW_MISSING=1
if [[ -z "${PYTHON:-}" ]]; then
    PYTHON=python3
    [[ -x "$REPO/.venv/bin/python" ]] && PYTHON="$REPO/.venv/bin/python"
fi
[[ -f "$PACKAGE" ]] || { echo "smoke_test: no such package: $PACKAGE" >&2; exit 2; }

ROOT="$(mktemp -d)"
trap 'rm -rf "$ROOT"' EXIT
say() { echo "[smoke] $*"; }
fail() { echo "[smoke] FAIL: $*" >&2; exit 1; }

case "$PACKAGE" in
    *.deb)
        dpkg-deb -x "$PACKAGE" "$ROOT/install"
        INSTALL="$ROOT/install/opt/avacast"
        AVACAST="$ROOT/install/usr/bin/avacast"  # the symlink: the bootloader must find _internal through it
        [[ -L "$AVACAST" ]] || fail "the .deb has no /usr/bin/avacast symlink"
        ;;
    *.tar.gz)
        mkdir -p "$ROOT/install"
        tar -C "$ROOT/install" -xzf "$PACKAGE"
        INSTALL="$(echo "$ROOT"/install/avacast-*)"
        AVACAST="$INSTALL/avacast"
        ;;
    *) fail "PACKAGE must be a .deb or a .tar.gz: $PACKAGE" ;;
esac
[[ -x "$INSTALL/avacast" ]] || fail "no executable avacast in $INSTALL"
say "installed copy: $INSTALL ($(du -sh "$INSTALL" | cut -f1))"

export HOME="$ROOT/home" XDG_CONFIG_HOME="$ROOT/home/.config" XDG_DATA_HOME="$ROOT/home/.local/share"
export XDG_CACHE_HOME="$ROOT/home/.cache" XDG_RUNTIME_DIR="$ROOT/run" QT_QPA_PLATFORM=offscreen
mkdir -p "$HOME" "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
unset AVACAST_HOME PYTHONPATH PYTHONHOME
cd "$ROOT"
touch "$ROOT/marker"
sleep 1  # so -newer can tell files written by the runs below from the unpacked ones

# 1. --help
HELP="$("$AVACAST" --help 2>&1)" || fail "avacast --help exited $?: $HELP"
grep -q "usage" <<<"$HELP" || fail "avacast --help printed no usage: $HELP"
say "ok: avacast --help"

has_command() { "$AVACAST" "$1" --help >/dev/null 2>&1; }
missing() {
    [[ $ALLOW_MISSING == 1 ]] || fail "this build has no '$1' command (avacast --help lists: $(tr '\n' ' ' <<<"$HELP" | cut -c1-300))"
    say "SKIPPED: this build has no '$1' command yet (--allow-missing)"
}

# 2. the app's self-test, offscreen
if has_command app; then
    start=$(date +%s)
    "$AVACAST" app --self-test || fail "avacast app --self-test exited $?"
    say "ok: avacast app --self-test ($(( $(date +%s) - start )) s)"
else
    missing app
fi

# 3. offline render with the shipped default model (and the shipped default portrait, if any)
if has_command render; then
    "$PYTHON" - "$ROOT/speech.wav" "$ROOT/portrait.png" <<'PYEOF'
import math, struct, sys, wave, zlib
# 2 s of a voiced-like signal: a 140 Hz buzz with syllable-rate amplitude modulation, 16 kHz mono.
rate, seconds = 16000, 2.0
with wave.open(sys.argv[1], "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate)
    frames = bytearray()
    for i in range(int(rate * seconds)):
        t = i / rate
        env = 0.5 * (1 - math.cos(2 * math.pi * 4 * t))
        s = env * sum(math.sin(2 * math.pi * 140 * k * t) / k for k in range(1, 6))
        frames += struct.pack("<h", int(8000 * s))
    w.writeframes(bytes(frames))
# A 256x256 stand-in portrait (skin-toned oval on a gradient), for builds that ship none.
size, rows = 256, []
for y in range(size):
    row = bytearray([0])
    for x in range(size):
        inside = ((x - 128) / 70) ** 2 + ((y - 120) / 90) ** 2 < 1
        row += bytes((200, 160, 130) if inside else (70 + y // 8, 80 + y // 8, 100 + y // 8))
    rows.append(bytes(row))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b"")
open(sys.argv[2], "wb").write(png)
PYEOF
    PORTRAIT="$(find "$INSTALL" -path '*/resources/*' -iname 'default_portrait.*' | head -1)"
    if [[ -n "$PORTRAIT" ]]; then
        say "portrait: the shipped $PORTRAIT"
    else
        PORTRAIT="$ROOT/portrait.png"
        say "portrait: none shipped, using a generated one"
    fi
    MODEL_ARGS=()
    if [[ -z "$(find "$INSTALL" -path '*/resources/model/*.safetensors*' | head -1)" ]]; then
        [[ $ALLOW_MISSING == 1 ]] || fail "this build ships no default model (resources/model/*.safetensors)"
        say "SKIPPED default model: this build ships none; rendering with --preset tiny (--allow-missing)"
        MODEL_ARGS=(--preset tiny)
    fi
    start=$(date +%s)
    "$AVACAST" render --ref "$PORTRAIT" --audio "$ROOT/speech.wav" --out "$ROOT/out.mp4" "${MODEL_ARGS[@]}" \
        || fail "avacast render exited $? (default model from the installed copy)"
    [[ -s "$ROOT/out.mp4" ]] || fail "avacast render wrote no $ROOT/out.mp4"
    FRAMES="$("$PYTHON" -c "import av, sys; c = av.open(sys.argv[1]); print(sum(1 for _ in c.decode(video=0)))" "$ROOT/out.mp4")" \
        || fail "could not count frames with PyAV from $PYTHON (set PYTHON to an interpreter with av)"
    [[ "$FRAMES" == 50 ]] || fail "out.mp4 has $FRAMES frames, expected 50 (2 s at 25 fps)"
    say "ok: avacast render -> out.mp4, $FRAMES frames, $(stat -c %s "$ROOT/out.mp4") bytes ($(( $(date +%s) - start )) s)"
else
    missing render
fi

# 4. the install folder stays untouched
WRITTEN="$(find "$INSTALL" -newer "$ROOT/marker" | head -5)"
[[ -z "$WRITTEN" ]] || fail "the app wrote inside its install folder: $WRITTEN"
say "ok: nothing written inside the install folder"
say "PASS: $(basename "$PACKAGE")"
