import numpy as np

from app.audio.pipeline import AudioPipeline
from app.audio.processing import DelayLine, LevelMeter, NoiseGate, rms_db
from app.audio.sources import ArraySource, speech_like

SR = 16_000


def block(level: float, n: int = 320) -> np.ndarray:
    return np.full(n, level, np.float32)


def test_gate_zeros_quiet_audio_and_holds_through_short_pauses():
    gate = NoiseGate(threshold_db=-40.0, hold_ms=100.0)
    assert not gate.process(block(0.001), SR).any()  # room noise: closed from the start
    loud = gate.process(block(0.1), SR)
    assert np.array_equal(loud, block(0.1))
    # 20 ms blocks: a 100 ms pause stays open (word gap), then the gate closes
    passed = [gate.process(block(0.001), SR).any() for _ in range(8)]
    assert passed[:5] == [True] * 5 and not any(passed[5:])


def test_gate_reconfigure_applies_immediately():
    gate = NoiseGate(threshold_db=-10.0, hold_ms=0)
    assert not gate.process(block(0.05), SR).any()
    gate.configure(-40.0, 0)
    assert gate.process(block(0.05), SR).any()


def test_meter_reports_max_since_last_read():
    meter = LevelMeter()
    meter.update(block(0.5))
    meter.update(block(0.01))
    peak, level = meter.read()
    assert peak == 0.5 and abs(level - rms_db(block(0.5))) < 1e-6
    assert meter.read() == (0.0, -100.0)


def test_delay_line_delays_by_the_set_amount():
    line = DelayLine(SR, delay_s=0.1, slack_s=0.01)
    signal = np.arange(SR, dtype=np.float32)  # 1 s ramp, 10 ms blocks in and out
    out = []
    for i in range(0, SR, 160):
        line.write(signal[i:i + 160])
        buf = np.empty(160, np.float32)
        line.read(buf)
        out.append(buf)
    out = np.concatenate(out)
    first = int(np.argmax(out > 0))
    assert abs(first - 0.1 * SR) <= 0.011 * SR
    nz = out[first:]
    assert np.all(np.diff(nz) == 1)  # contiguous once playing


def test_delay_line_recentres_when_the_reader_falls_behind():
    line = DelayLine(SR, delay_s=0.05, slack_s=0.01)
    line.write(np.ones(SR, np.float32))  # 1 s arrives while the output stalled
    buf = np.empty(160, np.float32)
    line.read(buf)
    assert abs(line.fill - 0.05 * SR) <= 160


def test_pipeline_gates_before_the_engine_and_counts_energy():
    pushed = []
    pipe = AudioPipeline(lambda x, sr: pushed.append(x.copy()), NoiseGate(-40, 0), LevelMeter())
    pipe(block(0.001), SR)
    pipe(block(0.2), SR)
    assert not pushed[0].any() and pushed[1].any()
    assert abs(pipe.energy_in - 320 * 0.04) < 1e-3 and pipe.samples_in == 640


def test_array_source_streams_in_real_time_and_stops():
    got = []
    src = ArraySource(speech_like(0.3), loop=False)
    src.start(lambda x, sr: got.append(x.size))
    assert src.finished.wait(2.0)
    src.stop()
    assert sum(got) == int(0.3 * SR)
