"""`avacast stream`: the live pipeline without the GUI (issue 5).

    avacast stream --audio-file talk.wav --sink file:out.mp4 --preset tiny
    avacast stream --audio-file talk.wav --realtime --sink null          # fed like a mic, Stats each second
    avacast stream --mic --sink vcam --weights model.safetensors --reference me.jpg

The microphone and the virtual camera need sounddevice / pyvirtualcam, which the engine never imports:
they come from the app-side modules `app.io.mic` and `app.io.vcam`, looked up by name only when asked
for, behind the runner's small protocols (an audio source with start(callback)/stop(); a FrameSink).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import time
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from engine.cli import UserError
from engine.cli.common import add_dtype_arg
from engine.config import SAMPLE_RATE, EngineConfig
from engine.device import BACKENDS

log = logging.getLogger(__name__)
CHUNK_S = 0.02  # a microphone delivers 20 ms callbacks
# Live microphone and virtual-camera I/O live in the app (engine/ never imports sounddevice or pyvirtualcam);
# the app's entry point registers the modules that provide them (`MicSource`, `VirtualCameraSink`).
IO_PROVIDERS: dict[str, str] = {}


def register_io(kind: str, module: str) -> None:
    """kind "mic" or "vcam" -> the module providing it (imported only when used)."""
    IO_PROVIDERS[kind] = module
VCAM_HINT = ("Linux: sudo apt install v4l2loopback-dkms && sudo modprobe v4l2loopback devices=1 "
             "exclusive_caps=1 card_label=Avacast; Windows: install OBS Studio (OBS Virtual Camera)")


class AudioSource(Protocol):
    sample_rate: int

    def start(self, on_audio: Callable[[np.ndarray, int], None]) -> None: ...

    def stop(self) -> None: ...


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("stream", help="run the live pipeline without the GUI",
                              description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--audio-file", metavar="F", help="speech file (any format PyAV reads)")
    src.add_argument("--mic", nargs="?", const="default", metavar="DEVICE",
                     help="live microphone (default device, or an index / name substring)")
    p.add_argument("--sink", action="append", metavar="null|file:OUT.mp4|vcam",
                   help="where frames go; repeat for several (default: null)")
    add_model_args(p)
    p.add_argument("--reference", action="append", default=[], metavar="IMG",
                   help="portrait image(s) of the face; repeat for several")
    p.add_argument("--realtime", action="store_true",
                   help="feed --audio-file at wall-clock speed in 20 ms chunks, like a microphone")
    p.add_argument("--seconds", type=float, metavar="S", help="stop after S seconds of audio")
    p.add_argument("--seed", type=int, default=0)


def add_model_args(p: argparse.ArgumentParser) -> None:
    m = p.add_mutually_exclusive_group()
    m.add_argument("--preset", choices=["tiny", "base", "paper"], help="random weights of a preset")
    m.add_argument("--weights", metavar="W", help="model weights (.safetensors)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    add_dtype_arg(p)
    p.add_argument("--backend", choices=list(BACKENDS),
                   help="execution backend (default: compile on GPUs, eager on CPU)")


def load_model(args: argparse.Namespace, cfg: EngineConfig | None = None) -> Any:
    """Engine from --weights / --preset (random weights) / the shipped default; errors -> UserError."""
    from engine.cli.common import load_engine_from_args

    return load_engine_from_args(args, cfg)


def read_audio(path: str) -> np.ndarray:
    """Any audio/video file -> float32 mono [n] at 16 kHz."""
    from engine.io.media import MediaError, read_audio as read

    try:
        return read(path, SAMPLE_RATE)
    except MediaError as exc:
        raise UserError(str(exc)) from None


def read_image(path: str) -> np.ndarray:
    from engine.io.media import MediaError, read_image as read

    try:
        return read(path)  # [H,W,3] uint8 RGB
    except MediaError as exc:
        raise UserError(str(exc)) from None


def _app_module(kind: str, what: str, hint: str) -> Any:
    name = IO_PROVIDERS.get(kind)
    if name is None:
        raise UserError(f"{what} needs the desktop app's I/O: run it as `avacast stream ...` (the app package)")
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise UserError(f"{what} needs the Avacast app package ({exc}); {hint}") from None


def make_sinks(specs: list[str], resolution: int, audio: np.ndarray | None) -> list[Any]:
    from engine.runtime.sinks import FileSink, NullSink

    sinks: list[Any] = []
    for spec in specs:
        if spec == "null":
            sinks.append(NullSink())
        elif spec.startswith("file:"):
            sinks.append(FileSink(Path(spec[5:]), audio=audio))
        elif spec == "vcam" or spec.startswith("vcam:"):
            mod = _app_module("vcam", "--sink vcam", "pip install pyvirtualcam; " + VCAM_HINT)
            try:
                sinks.append(mod.VirtualCameraSink(width=resolution, height=resolution,
                                                   device=spec[5:] or None))
            except RuntimeError as exc:
                raise UserError(str(exc)) from None
    return sinks


def check_sink_specs(specs: list[str]) -> None:
    """Validate --sink values before anything slow happens."""
    for spec in specs:
        if spec.startswith("file:"):
            if Path(spec[5:]).suffix.lower() not in (".mp4", ".mov", ".mkv"):
                raise UserError(f"--sink {spec}: the file must end in .mp4, .mov or .mkv")
        elif not (spec in ("null", "vcam") or spec.startswith("vcam:")):
            raise UserError(f"unknown --sink {spec!r}; use null, file:OUT.mp4 or vcam")


def run(args: argparse.Namespace) -> int:
    from engine.runtime.runner import Runner

    specs = args.sink or ["null"]
    check_sink_specs(specs)  # before the slow parts
    if args.seconds is not None and args.seconds <= 0:
        raise UserError("--seconds must be > 0")
    audio = read_audio(args.audio_file) if args.audio_file else None
    if audio is not None and args.seconds is not None:
        audio = audio[: int(args.seconds * SAMPLE_RATE)]
    refs = [read_image(p) for p in args.reference]
    mic = _open_mic(args.mic) if args.mic is not None else None
    engine = load_model(args)
    sinks: list[Any] = []
    try:
        sinks = make_sinks(specs, engine.cfg.vae.resolution, audio)
        try:
            session = engine.open_session(refs, seed=args.seed, warm_up=False)  # the runner warms it
        except ValueError as exc:
            raise UserError(str(exc)) from None
    except BaseException:
        for s in sinks:
            s.close()
        raise
    realtime = bool(args.realtime or mic is not None)
    runner = Runner(session, sinks, realtime=realtime, cfg=engine.cfg.runtime,
                    device_name=engine.device_name)
    print(f"avacast stream: {engine.cfg.name} on {engine.device_name}, "
          f"{'real time' if realtime else 'as fast as possible'} -> {', '.join(specs)}", flush=True)
    interrupted = False
    runner.start()
    try:
        if mic is not None:
            _feed_mic(runner, mic, args.seconds)
        else:
            _feed_file(runner, audio, realtime)
        _wait(runner)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if mic is not None:
            mic.stop()
        runner.stop()
    final = runner.stats()
    print("final: " + final.line() + _gpu_mem_line(runner), flush=True)
    if realtime:
        print(final.run_line(), flush=True)
    if runner.error is not None:
        print(f"avacast stream: stopped by an error: {runner.error}", flush=True)
        return 1
    return 130 if interrupted else 0


def _open_mic(device: str) -> AudioSource:
    mod = _app_module("mic", "--mic", "pip install sounddevice (Linux: sudo apt install libportaudio2)")
    try:
        return mod.MicSource(device=None if device == "default" else device)
    except (RuntimeError, OSError) as exc:
        raise UserError(str(exc)) from None


def _gpu_mem_line(runner: Any) -> str:
    """Allocated GPU memory on the runner's device, for the per-second line (flat over a long stream)."""
    dev = getattr(getattr(runner, "session", None), "device", None)
    if dev is None or dev.type != "cuda":
        return ""
    import torch

    return f" | gpu mem {torch.cuda.memory_allocated(dev) / 2**20:.1f} MiB"


def _printer(runner: Any, every: float = 1.0) -> Callable[[], None]:
    last = [time.monotonic()]

    def maybe_print() -> None:
        if time.monotonic() - last[0] >= every:
            last[0] = time.monotonic()
            print(runner.stats().line() + _gpu_mem_line(runner), flush=True)
    return maybe_print


def _feed_file(runner: Any, audio: np.ndarray, realtime: bool) -> None:
    if not realtime:
        runner.push_audio(audio, SAMPLE_RATE)  # lossless offline runner: waits for ring space
        runner.end_audio()
        return
    chunk, t0, tick = int(CHUNK_S * SAMPLE_RATE), time.monotonic(), _printer(runner)
    for k, i in enumerate(range(0, audio.shape[0], chunk)):
        if runner.error is not None:
            break
        runner.push_audio(audio[i:i + chunk], SAMPLE_RATE)
        tick()
        delay = t0 + (k + 1) * CHUNK_S - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    runner.end_audio()


def _feed_mic(runner: Any, mic: AudioSource, seconds: float | None) -> None:
    mic.start(runner.push_audio)
    t0, tick = time.monotonic(), _printer(runner)
    while runner.error is None and (seconds is None or time.monotonic() - t0 < seconds):
        time.sleep(0.05)
        tick()
    mic.stop()
    runner.end_audio()


def _wait(runner: Any) -> None:
    tick = _printer(runner)
    while not runner.wait(0.2):
        tick()
