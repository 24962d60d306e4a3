"""Extract uv.exe from uv's win_amd64 wheel (it sits in uv-VERSION.data/scripts/)."""
import sys
import zipfile
from pathlib import Path


def extract(wheel: Path, dest: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.endswith("/scripts/uv.exe")]
        if not names:
            sys.exit(f"extract_uv: {wheel.name} holds no uv.exe; is it the win_amd64 wheel?")
        dest.write_bytes(zf.read(names[0]))


if __name__ == "__main__":
    extract(Path(sys.argv[1]), Path(sys.argv[2]))
