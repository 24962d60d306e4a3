"""The one place for device, dtype, TF32 and backend choices (DESIGN.md §4)."""
from __future__ import annotations

import logging

import torch
from torch import nn

log = logging.getLogger(__name__)
BACKENDS = ("eager", "graphs", "compile", "tensorrt")


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA was requested but no NVIDIA GPU/driver is available "
                           "(install the CUDA build of torch, or use --device cpu)")
    return dev


def default_dtype(device: torch.device) -> torch.dtype:
    return torch.bfloat16 if device.type == "cuda" else torch.float32


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}  # the names users see (--dtype, the app's Engine tab)


def dtype_name(dtype: torch.dtype) -> str:
    return next((k for k, v in DTYPES.items() if v == dtype), str(dtype).removeprefix("torch."))


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX (recent Xeons, AMD Zen 4 and newer): bf16 runs natively, about 2x fp32 for our model
    (docs/PERFORMANCE.md); other CPUs emulate it. torch.cpu's probes are private API: missing means no."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def fast_dtype(device: torch.device) -> torch.dtype:
    """The fastest dtype that keeps the picture (the GPUs' bf16, within rounding of fp32): bf16 on GPUs and on
    CPUs with native bf16, else fp32. The app's choice; tests and the CLI keep `default_dtype` (--dtype bf16)."""
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return default_dtype(device)


def configure(device: torch.device) -> None:
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "CPU"


def default_backend(device: torch.device) -> str:
    return "compile" if device.type == "cuda" else "eager"


def prepare(model: nn.Module, backend: str = "eager") -> nn.Module:
    """Choose the execution backend of the model's streaming sessions."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "tensorrt":
        try:
            import torch_tensorrt  # noqa: F401  (optional accelerator, imported lazily)
        except ImportError:
            raise RuntimeError("the tensorrt backend needs torch-tensorrt, which is not installed "
                               "(pip install torch-tensorrt on a machine with TensorRT); use --backend compile") from None
        raise RuntimeError("the tensorrt backend is not wired to the streaming blocks yet; use --backend compile")
    # "graphs": sessions capture their steady-state block (all DiT steps + commit) and the VAE decode
    # as CUDA graphs (engine.runtime.graphs). "compile": the same, with the captured functions compiled
    # by torch.compile first (fused kernels) and the VAE in channels-last layout, which cuDNN's 3D
    # convolutions prefer. On CPU there is nothing to capture: both run eagerly.
    model.backend = backend
    on_cuda = any(p.is_cuda for p in model.parameters())
    if backend == "compile" and on_cuda and hasattr(model, "vae"):
        model.vae.to(memory_format=torch.channels_last_3d)
    return model
