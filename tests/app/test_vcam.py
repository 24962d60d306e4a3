"""Virtual camera toggle through pyvirtualcam's backend registry (no kernel driver needed)."""
import pytest

from tests.app.fakecam import FakeCamera, NoDriver
from tests.app.test_window import make_window  # noqa: F401 (fixture)

pyvirtualcam = pytest.importorskip("pyvirtualcam")
from pyvirtualcam import camera as pvc  # noqa: E402


@pytest.fixture
def fake_backend(monkeypatch):
    monkeypatch.setattr(pvc, "BACKENDS", {})  # only ours: a real v4l2loopback must not be used
    pyvirtualcam.register_backend("avacast-test", FakeCamera)
    FakeCamera.instances.clear()
    return FakeCamera


@pytest.fixture
def no_driver(monkeypatch):
    monkeypatch.setattr(pvc, "BACKENDS", {"v4l2loopback": NoDriver})


def live(qtbot, w, face_png):
    w.avatar_panel.add_files([str(face_png)])
    assert w.start()
    qtbot.waitUntil(lambda: w.bridge.state == "running", timeout=60_000)


def test_vcam_sends_letterboxed_mirrored_720p(make_window, fake_backend, face_png, qtbot):  # noqa: F811
    w = make_window()
    w.output_panel.resolution.setCurrentIndex(w.output_panel.resolution.findData("720p"))
    w.output_panel.mirror.setChecked(True)
    w.output_panel.vcam.setChecked(True)
    live(qtbot, w, face_png)
    cam = fake_backend.instances[-1]
    qtbot.waitUntil(lambda: cam.frames >= 10, timeout=60_000)
    assert (cam.width, cam.height) == (1280, 720)
    side = (1280 - 720) // 2
    assert not cam.last[:, :side - 1].any() and not cam.last[:, -side + 1:].any()  # black bars
    assert cam.last[:, side:-side].any()
    assert "Fake Camera" in w.output_panel.vcam_status.text()
    w.stop()
    assert cam.closed
    assert w.bridge.runner is None


def test_vcam_off_opens_no_camera(make_window, fake_backend, face_png, qtbot):  # noqa: F811
    w = make_window()
    w.output_panel.vcam.setChecked(False)
    live(qtbot, w, face_png)
    qtbot.waitUntil(lambda: w.preview.frames_shown > 2, timeout=60_000)
    assert fake_backend.instances == []


def test_missing_driver_shows_how_to_install(make_window, no_driver, face_png, qtbot,  # noqa: F811
                                             monkeypatch):
    monkeypatch.setattr("platform.system", lambda: "Linux")
    w = make_window()
    w.output_panel.vcam.setChecked(True)
    live(qtbot, w, face_png)
    text = w.output_panel.vcam_status.text()
    assert "v4l2loopback" in text and "modprobe" in text
    assert "v4l2loopback" in w.messages.label.text()
    qtbot.waitUntil(lambda: w.preview.frames_shown > 2, timeout=60_000)  # preview keeps working


def test_windows_help_names_obs(monkeypatch):
    from app.io.vcam import install_hint
    assert "OBS" in install_hint("Windows")
