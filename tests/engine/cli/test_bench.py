import json

from engine.cli import main

FIELDS = {"preset", "resolution", "steps", "cfg", "block_frames", "window_frames", "frames_per_block",
          "backend", "backend_note", "device", "device_name", "fps", "block_ms_p50", "stage_ms",
          "flops_per_frame", "tflops_achieved", "peak_gpu_mem_bytes", "latency_p50_ms", "latency_p95_ms",
          "paced", "utilisation", "compute_floor_fps"}


def test_bench_tiny_cpu_writes_every_field(tmp_path, capsys):
    out = tmp_path / "b" / "out.json"
    rc = main(["bench", "--preset", "tiny", "--device", "cpu", "--seconds", "0.5", "--warmup", "1",
               "--steps", "1", "--identity-hold", "0.75", "--json", str(out)])
    assert rc == 0
    r = json.loads(out.read_text())
    assert FIELDS <= set(r)
    assert r["steps"] == 1 and r["identity_hold"] == 0.75 and r["device"] == "cpu" and r["peak_gpu_mem_bytes"] == 0
    assert r["fps"] > 0 and r["flops_per_frame"] > 1e6 and r["tflops_achieved"] > 0
    assert {"features", "denoise", "decode"} <= set(r["stage_ms"])
    assert 0 < r["latency_p50_ms"] <= r["latency_p95_ms"]
    assert r["paced"]["frames_out"] > 0 and r["paced"]["playout_ms"] > 0
    assert {"late", "held", "dropped"} <= set(r["paced"]) and r["paced"]["session_open_s"] > 0
    assert "FPS at the full window" in capsys.readouterr().out


def test_bench_flops_grow_with_steps(tmp_path):
    # the counted FLOPs are of a full-window block: more steps -> proportionally more denoising work
    def flops(*extra):
        out = tmp_path / "f.json"
        assert main(["bench", "--preset", "tiny", "--device", "cpu", "--seconds", "0.05", "--warmup", "0",
                     "--paced-seconds", "0", "--json", str(out), *extra]) == 0
        r = json.loads(out.read_text())
        assert "paced" not in r and "latency_p50_ms" not in r  # --paced-seconds 0 skips that phase
        return r["flops_per_frame"]
    assert flops("--steps", "4") > flops("--steps", "1")


def test_bench_invalid_config_is_a_one_line_error(capsys):
    assert main(["bench", "--preset", "tiny", "--device", "cpu", "--block", "2", "--window", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "invalid configuration" in err and len(err.splitlines()) == 1


def test_bench_tensorrt_missing_says_so(capsys):
    assert main(["bench", "--preset", "tiny", "--device", "cpu", "--backend", "tensorrt"]) == 2
    assert "torch-tensorrt" in capsys.readouterr().err
