"""Which collected files the Avacast bundle leaves out (used by avacast.spec; checked by tests).

Paths are bundle-relative with forward slashes, e.g. ``torch/include/ATen/ATen.h``. Only build-time or
test-only material is listed: headers, static libraries, CMake files, torch's C++ test binaries and
test data. Runtime libraries (``*.so*``, ``*.dll``) and Python sources are never matched, because torch
reads some ``.py`` sources at run time (TorchScript, torch.compile).
"""
from __future__ import annotations

from fnmatch import fnmatch

UNNEEDED_PATTERNS = (
    "torch/include/*",
    "torch/share/*",
    "torch/test/*",
    # torch/bin: C++ test programs and protoc; torch_shm_manager stays (torch checks for it at import).
    "torch/bin/*Test",
    "torch/bin/test_*",
    "torch/bin/protoc*",
    "torch/bin/*.pt",
    "torch/bin/*.ptl",
    "torch/lib/*_test.so",  # libjitbackend_test, libtorchbind_test: loaded only by torch's own tests
    "torch/_inductor/codegen/*.cpp",  # C++ templates only used when compiling for CPU with inductor
    "caffe2/*",
    "*.a",
    "*.h",
    "*.hpp",
    "*.cuh",
    "*.cmake",
    "*.pyi",
    "PySide6/Qt/translations/*",  # the app ships English only; Qt's own dialog strings
    "PySide6/include/*",
    "PySide6/typesystems/*",
    "PySide6/glue/*",
    "shiboken6/include/*",
)


def is_unneeded(dest: str) -> bool:
    """True for a bundle path that the running app never reads."""
    path = dest.replace("\\", "/")
    return any(fnmatch(path, pattern) for pattern in UNNEEDED_PATTERNS)
