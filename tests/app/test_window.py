"""Main window with the tiny engine: panels, persistence, start/stop, close."""
import threading

import numpy as np
import pytest
import torch
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from app import paths
from app.audio.sources import ArraySource, speech_like
from app.settings import load_settings
from app.ui.main_window import MainWindow


def avacast_threads():
    return {t.name for t in threading.enumerate() if t.name.startswith("avacast")}


@pytest.fixture
def make_window(qtbot, tiny_engine_factory):
    windows = []

    def make(**kw):
        kw.setdefault("source_factory", lambda: ArraySource(speech_like(1.0), loop=True))
        w = MainWindow(engine_factory=tiny_engine_factory, **kw)
        qtbot.addWidget(w)
        w.show()
        windows.append(w)
        # ready as the user sees it: the engine_ready signal has reached the window
        qtbot.waitUntil(lambda: w.engine_panel.model_status.text().startswith("Loaded")
                        or w.messages.isVisible(), timeout=60_000)
        return w
    yield make
    for w in windows:
        w.close()


def go_live(qtbot, w):
    assert w.start()
    qtbot.waitUntil(lambda: w.bridge.state == "running", timeout=60_000)
    qtbot.waitUntil(lambda: w.preview.frames_shown > 2, timeout=60_000)


def test_first_run_without_portrait_asks_for_a_photo(make_window, monkeypatch):
    monkeypatch.setattr(paths, "default_portrait", lambda: None)
    w = make_window()
    assert w.settings.avatars == []
    assert not w.start()
    assert w.messages.isVisible() and "photo" in w.messages.label.text()
    assert w.device_label.text().startswith("CPU - slow")


def test_first_run_uses_the_shipped_default_portrait(make_window):
    assert paths.default_portrait() is not None
    w = make_window()
    assert len(w.settings.avatars) == 1 and len(w.avatar_panel.avatar.images) == 1


def test_avatar_panel_add_drop_reorder_crop_persist(make_window, face_png, two_faces_png, qtbot, monkeypatch):
    monkeypatch.setattr(paths, "default_portrait", lambda: None)  # start from an empty avatar list
    w = make_window()
    panel = w.avatar_panel
    assert panel.add_files([str(face_png)]) == 1
    assert w.settings.active_avatar is not None
    # drag-and-drop of a file onto the panel adds it as well
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(two_faces_png))])
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    panel.dropEvent(drop)
    avatar = panel.avatar
    assert len(avatar.images) == 2 and panel.images.count() == 2
    assert "2 faces" in w.messages.label.text()  # warning surfaced to the user
    assert "2 faces" in panel.warnings.text()  # and next to the crop of the selected image
    second = avatar.images[1]
    panel.images.setCurrentRow(1)
    panel.move_selected(-1)
    assert avatar.images[0] is second
    panel.crop_view.set_crop((10, 20, 300))
    assert avatar.images[0].crop == (10, 20, 300)
    saved, notice = load_settings()
    assert notice is None
    assert saved.avatar(avatar.id).images[0].crop == (10, 20, 300)
    assert [i.file for i in saved.avatar(avatar.id).images] == [i.file for i in avatar.images]
    panel.remove_selected()
    assert len(load_settings()[0].avatar(avatar.id).images) == 1


def test_switching_between_saved_avatars(make_window, face_png, two_faces_png):
    w = make_window()
    panel = w.avatar_panel
    a = panel.new_avatar("Alice")
    panel.add_files([str(face_png)])
    b = panel.new_avatar("Bob")
    panel.add_files([str(two_faces_png)])
    assert w.settings.active_avatar == b.id
    panel.avatar_combo.setCurrentIndex(panel.avatar_combo.findData(a.id))
    assert w.settings.active_avatar == a.id and panel.images.count() == 1
    assert load_settings()[0].active_avatar == a.id


def test_eight_images_at_most(make_window, face_png, monkeypatch):
    monkeypatch.setattr(paths, "default_portrait", lambda: None)
    w = make_window()
    panel = w.avatar_panel
    assert panel.add_files([str(face_png)] * 9) == 8
    assert not panel.add_button.isEnabled()
    assert "at most 8" in w.messages.label.text()


def test_gate_controls_reach_the_audio_path(make_window):
    w = make_window()
    w.audio_panel.threshold.setValue(-30)
    w.audio_panel.hold.setValue(400)
    assert (w.bridge.gate.threshold_db, w.bridge.gate.hold_ms) == (-30.0, 400.0)
    s = load_settings()[0]
    assert (s.audio.gate_threshold_db, s.audio.gate_hold_ms) == (-30.0, 400)


def test_likeness_hold_reaches_the_running_stream_and_persists(make_window, face_png, qtbot):
    """The Engine panel's likeness hold: saved in the settings, handed to the session at start and changed
    live at a block boundary; "Model default" keeps the model's own."""
    w = make_window()
    assert w.engine_panel.hold.text() == "Model default" and w.engine_panel.sampler()[2] is None
    w.avatar_panel.add_files([str(face_png)])
    w.engine_panel.hold.setValue(40)
    assert load_settings()[0].engine.identity_hold == 0.4
    go_live(qtbot, w)
    assert w.bridge.runner.session.sampler.identity_hold == 0.4
    w.engine_panel.hold.setValue(0)
    qtbot.waitUntil(lambda: w.bridge.runner.session.sampler.identity_hold == 0.0, timeout=30_000)
    w.stop()


def test_motion_choice_persists_and_reaches_the_next_session(make_window, face_png, qtbot):
    """The Engine panel's Motion choice (the model's driver face or the portrait itself): saved, and handed to
    the session at start; "Model default" keeps the model's own."""
    w = make_window()
    assert w.engine_panel.driver.currentText() == "Model default"
    w.avatar_panel.add_files([str(face_png)])
    w.engine_panel.driver.setCurrentText("Your portrait")
    assert load_settings()[0].engine.use_driver is False
    go_live(qtbot, w)
    assert w.bridge.runner.session.sampler.use_driver is False
    w.stop()
    w2 = make_window()
    assert w2.engine_panel.driver.currentText() == "Your portrait"


def test_bad_weights_file_is_a_message_and_keeps_the_old_model(make_window, tmp_path, qtbot):
    w = make_window()
    old = w.bridge.engine
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x00" * 32)
    w.engine_panel.choose_weights(str(bad))
    qtbot.waitUntil(lambda: w.messages.isVisible(), timeout=30_000)
    assert "model.safetensors" in w.messages.label.text()
    assert w.settings.engine.weights is None  # only a model that loaded is remembered
    assert w.bridge.engine is None or w.bridge.engine is old


def test_corrupt_settings_notice_in_ui(make_window):
    path = paths.settings_path()
    path.parent.mkdir(parents=True)
    path.write_text("{broken")
    w = make_window()
    assert w.messages.isVisible() and "defaults" in w.messages.label.text()
    assert list(path.parent.glob("settings.json.bad-*"))


def test_start_stop_cycles_and_close_release_everything(make_window, face_png, qtbot):
    baseline = avacast_threads()
    w = make_window()
    w.avatar_panel.add_files([str(face_png)])
    for _ in range(2):
        go_live(qtbot, w)
        assert w.start_button.text() == "Stop"
        qtbot.waitUntil(lambda: "fps" in w.status.text(), timeout=10_000)
        w.toggle()
        assert w.bridge.runner is None and avacast_threads() == baseline
    go_live(qtbot, w)
    w.close()  # closing while live stops the stream and drops the engine
    assert w.bridge.runner is None and w.bridge.engine is None
    assert avacast_threads() == baseline


def test_starting_on_a_gpu_says_the_first_start_takes_minutes(make_window, monkeypatch):
    """A GPU session compiles and captures its graphs at open (1-2 min the first time): say so, so the
    user does not take the wait for a hang. On CPU there is nothing to compile."""
    w = make_window()
    monkeypatch.setattr(w.bridge, "state", "starting")
    w._on_state("starting")
    assert w.status.text() == "Starting…"  # the test engine runs on the CPU
    monkeypatch.setattr(w.bridge.engine, "device", torch.device("cuda", 0))
    w._on_state("starting")
    assert "1–2 minutes" in w.status.text()


def ask_for(w, monkeypatch, speech_path, video_path) -> None:
    """The two file dialogs of Save video…, answered."""
    monkeypatch.setattr(w, "_ask_speech_file", lambda: str(speech_path))
    monkeypatch.setattr(w, "_ask_video_path", lambda audio: str(video_path))


def wait_render_over(qtbot, w, timeout=60_000) -> None:
    """Until the window has taken the render's last signals (the button reads Save video… again)."""
    qtbot.waitUntil(lambda: w.bridge.state == "idle" and w.render_button.text() == "Save video…", timeout=timeout)


def test_save_video_renders_the_avatar_speaking_a_file(make_window, face_png, qtbot, tmp_path, monkeypatch):
    """Without a terminal: a speech file -> an MP4 of the avatar, with the engine settings, shown in the
    preview as it renders; Start waits meanwhile."""
    from engine.io.media import video_info, write_audio

    w = make_window()
    w.avatar_panel.add_files([str(face_png)])
    wav, out = tmp_path / "speech.wav", tmp_path / "videos" / "talk.mp4"
    write_audio(wav, speech_like(1.5), 16000)
    ask_for(w, monkeypatch, wav, out)
    w.engine_panel.hold.setValue(40)
    opened, open_session = [], w.bridge.engine.open_session
    monkeypatch.setattr(w.bridge.engine, "open_session", lambda refs, **kw: opened.append(kw) or open_session(refs, **kw))
    progress = []
    w.bridge.render_progress.connect(lambda done, total: progress.append((done, total)))
    assert w.render_button.isEnabled() and w.render_button.text() == "Save video…"
    assert w.save_video()
    assert not w.start_button.isEnabled() and w.render_button.text() == "Cancel"
    wait_render_over(qtbot, w)
    info = video_info(out)
    assert info.n_frames == 38 and info.has_audio and abs(info.duration_s - 1.5) < 0.1
    assert progress[-1] == (38, 38) and w.preview.frames_shown > 0
    assert opened[0]["identity_hold"] == 0.4  # the Engine tab's settings, as for going live
    assert w.messages.isVisible() and str(out) in w.messages.label.text()
    assert w.start_button.isEnabled() and w.render_button.text() == "Save video…"


def test_a_cancelled_video_keeps_the_file_it_would_replace(make_window, face_png, qtbot, tmp_path, monkeypatch):
    from PySide6.QtCore import Qt

    from engine.io.media import write_audio

    w = make_window()
    w.avatar_panel.add_files([str(face_png)])
    wav, out = tmp_path / "speech.wav", tmp_path / "talk.mp4"
    write_audio(wav, speech_like(20.0), 16000)
    out.write_bytes(b"an earlier video")
    ask_for(w, monkeypatch, wav, out)
    # cancelled from the render's own thread after 10 frames, as if Cancel had been clicked just then
    w.bridge.render_progress.connect(lambda done, total: done >= 10 and w.bridge.cancel_render(),
                                     Qt.ConnectionType.DirectConnection)
    assert w.save_video()
    wait_render_over(qtbot, w)
    assert out.read_bytes() == b"an earlier video" and sorted(p.name for p in tmp_path.glob("*.mp4")) == ["talk.mp4"]
    assert "cancelled" in w.messages.label.text()
    cancels = []
    monkeypatch.setattr(w.bridge, "state", "rendering")
    monkeypatch.setattr(w.bridge, "cancel_render", lambda: cancels.append(1))
    assert not w.save_video() and cancels == [1]  # the button says Cancel while a video is being saved


def test_save_video_from_a_file_without_sound_is_a_message(make_window, face_png, qtbot, tmp_path, monkeypatch):
    w = make_window()
    w.avatar_panel.add_files([str(face_png)])
    bad, out = tmp_path / "notes.wav", tmp_path / "talk.mp4"
    bad.write_bytes(b"not a sound file at all")
    ask_for(w, monkeypatch, bad, out)
    assert w.save_video()
    wait_render_over(qtbot, w)
    assert "notes.wav" in w.messages.label.text() and not out.exists()
    assert w.render_button.isEnabled() and w.start_button.isEnabled()


def test_closing_the_window_while_saving_a_video_cancels_it(make_window, face_png, qtbot, tmp_path, monkeypatch):
    from engine.io.media import write_audio

    baseline = avacast_threads()
    w = make_window()
    w.avatar_panel.add_files([str(face_png)])
    wav, out = tmp_path / "speech.wav", tmp_path / "talk.mp4"
    write_audio(wav, speech_like(60.0), 16000)
    ask_for(w, monkeypatch, wav, out)
    assert w.save_video()
    qtbot.waitUntil(lambda: w.preview.frames_shown > 0, timeout=30_000)
    w.close()
    assert avacast_threads() == baseline and not out.exists() and not list(tmp_path.glob(".*partial*"))


def test_the_app_runs_bf16_where_the_cpu_has_it_natively(monkeypatch):
    """The app's own engine factory: bf16 on a CPU with native bf16 (2x the frames, docs/PERFORMANCE.md), fp32 on
    other CPUs, bf16 on GPUs; the Engine tab says which."""
    import engine.api
    from app.ui.main_window import default_engine_factory
    from engine import device

    asked = []
    monkeypatch.setattr(engine.api, "load_engine", lambda **kw: asked.append(kw["dtype"]))
    monkeypatch.setattr(device, "pick_device", lambda name: torch.device("cpu"))
    for native in (True, False):
        monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: native)
        default_engine_factory(None)()
    assert asked == [torch.bfloat16, torch.float32]
    assert device.fast_dtype(torch.device("cuda", 0)) == torch.bfloat16


def test_engine_tab_says_the_precision(make_window):
    w = make_window()
    assert w.engine_panel.model_status.text().endswith("on CPU (fp32)")  # the test engine: tiny, fp32
