"""Copy the licence files of every distribution installed in the build venv into the bundle.

The bundle redistributes these packages (and the libraries inside their wheels: Qt, FFmpeg, OpenBLAS,
...), so their licence texts must travel with it. Output: DEST/<distribution>-<version>/<files>.
"""
from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

log = logging.getLogger("collect_licenses")

LISTER = r"""
import importlib.metadata as md, json
out = []
for dist in md.distributions():
    files = [[str(dist.locate_file(f)), str(f)] for f in (dist.files or [])
             if any(k in f.name.upper() for k in ("LICENSE", "LICENCE", "COPYING", "NOTICE", "AUTHORS"))]
    out.append([dist.metadata["Name"], dist.version, files])
print(json.dumps(out))
"""


def collect(venv: Path, dest: Path) -> int:
    import json

    python = venv / "bin" / "python"
    dists = json.loads(subprocess.run([str(python), "-c", LISTER], check=True, capture_output=True,
                                      text=True).stdout)
    skipped_build_only = {"pyinstaller", "pyinstaller-hooks-contrib", "pip", "setuptools", "altgraph"}
    count = 0
    for name, version, files in dists:
        if name.lower() in skipped_build_only:
            continue
        target = dest / f"{name}-{version}"
        for file, rel in files:
            src = Path(file)
            if src.is_file():
                # Keep the path inside site-packages: several files of one wheel share a name.
                out = target / rel.replace("..", "_")
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, out)
                count += 1
    return count


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="[collect_licenses] %(message)s")
    n = collect(Path(sys.argv[1]), Path(sys.argv[2]))
    log.info("copied %d licence files", n)
