import json
import os

import pytest

from app import paths
from app.settings import (SCHEMA_VERSION, Avatar, ImageEntry, Settings, load_settings,
                          save_settings)


def test_avacast_home_overrides_both_dirs(avacast_home):
    assert paths.config_dir() == avacast_home / "config"
    assert paths.data_dir() == avacast_home / "data"
    assert paths.settings_path().is_relative_to(avacast_home)


def test_round_trip_keeps_every_field():
    s = Settings()
    s.audio.gate_threshold_db = -37.0
    s.audio.input_device = "USB Mic"
    s.output.vcam_resolution = "720p"
    s.output.mirror = True
    s.engine.steps = 6
    s.engine.cfg = 1.5
    s.engine.identity_hold = 0.4
    s.engine.use_driver = False
    s.avatars.append(Avatar(id="abc123", name="Me", images=[ImageEntry("x.png", (1, 2, 300))]))
    s.active_avatar = "abc123"
    save_settings(s)
    loaded, notice = load_settings()
    assert notice is None
    assert loaded == s
    assert loaded.avatars[0].images[0].crop == (1, 2, 300)


def test_missing_file_gives_defaults_without_notice():
    s, notice = load_settings()
    assert s == Settings() and notice is None


@pytest.mark.parametrize("content", [
    "{not json",
    json.dumps({"schema": SCHEMA_VERSION, "audio": {"gate_threshold_db": 12.0}}),
    json.dumps({"schema": 999}),
    json.dumps({"schema": SCHEMA_VERSION, "surprise": 1}),
    json.dumps({"schema": SCHEMA_VERSION, "engine": {"use_driver": "yes"}}),
    json.dumps([1, 2]),
])
def test_corrupt_file_is_kept_aside_and_defaults_used(content):
    path = paths.settings_path()
    path.parent.mkdir(parents=True)
    path.write_text(content)
    s, notice = load_settings()
    assert s == Settings()
    assert notice and "defaults" in notice
    backups = list(path.parent.glob("settings.json.bad-*"))
    assert len(backups) == 1 and backups[0].read_text() == content
    assert not path.exists()
    assert backups[0].name in notice


def test_save_is_atomic_and_leaves_no_temp_files(monkeypatch):
    save_settings(Settings())
    path = paths.settings_path()
    before = path.read_text()

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", boom)
    s = Settings()
    s.audio.gate_hold_ms = 999
    with pytest.raises(OSError):
        save_settings(s)
    assert path.read_text() == before  # old file intact
    assert [p.name for p in path.parent.iterdir()] == ["settings.json"]


def test_invalid_settings_are_not_saved():
    s = Settings()
    s.output.vcam_resolution = "4k"
    with pytest.raises(ValueError, match="resolution"):
        save_settings(s)
    assert not paths.settings_path().exists()
