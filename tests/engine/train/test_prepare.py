"""`avacast prepare` on generated video (issue 3 item 1): pack contents, timing, skips, split."""
import json

import numpy as np
import pytest

from engine.cli import prepare as cli
from engine.io import media as M
from engine.train import face
from engine.train.pack import Pack, PackError
from engine.train.prepare import (PrepareConfig, cut_clips, identity_of, prepare, split_of,
                                  time_map)
from tests.engine.train import synth

CANVAS = (320, 240)


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    a = synth.speech(5.0, seed=2)
    M.write_video(src / "anna_clip1.mp4", synth.talking_frames(a, 29.97, canvas=CANVAS, motion=6),
                  fps=29.97, audio=a)
    b = synth.speech(3.0, seed=3)  # audio in a same-named .wav beside the video
    M.write_video(src / "ben.mp4", synth.talking_frames(b, 22.131, canvas=CANVAS), fps=22.131)
    M.write_audio(src / "ben.wav", b)
    M.write_video(src / "anna_clip2.mp4", synth.talking_frames(synth.speech(2.0), 25, canvas=CANVAS),
                  fps=25)  # no audio anywhere: kept as video-only
    M.write_video(src / "wall.mp4", synth.faceless_frames(40), fps=25, audio=synth.speech(1.6))
    M.write_video(src / "blink.mp4", synth.talking_frames(synth.speech(0.5), 25, canvas=CANVAS), fps=25)
    (src / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    (src / "MANIFEST.tsv").write_text("file\thas_audio\tcontent_note\n"
                                      "ben.mp4\tpaired:ben.wav\tlip sync NOT confirmed (weak)\n")
    out = tmp_path_factory.mktemp("pack")
    cfg = PrepareConfig(size=96, max_clip_s=2.0, min_clip_s=1.0)
    index = prepare([src], out, cfg, progress=False)
    return out, index


def _reasons(index):
    return {f["source"].rsplit("/", 1)[-1]: (f["status"], f["reason"]) for f in index["files"]}


def test_pack_clips_sizes_and_durations(pack):
    out, index = pack
    p = Pack(out)
    by_src = {}
    for c in p.clips():
        by_src.setdefault(c.source.rsplit("/", 1)[-1], []).append(c)
        assert c.frames <= 50 and c.frames >= 25 and c.duration_s == c.frames / 25
    # 5 s at 29.97 fps -> 124-125 frames at 25 fps -> 3 equal clips of <= 2 s; 3 s at 22.131 -> 2
    assert [len(by_src[k]) for k in ("anna_clip1.mp4", "ben.mp4", "anna_clip2.mp4")] == [3, 2, 1]
    assert sum(c.frames for c in by_src["anna_clip1.mp4"]) >= 110  # Haar may miss an end frame
    c = by_src["anna_clip1.mp4"][1]
    frames = p.load_frames(c)
    assert frames.shape == (c.frames, 96, 96, 3) and frames.dtype == np.uint8
    assert p.load_frames(c, size=40, start=5, count=7).shape == (7, 40, 40, 3)
    assert p.load_audio(c).shape == (c.frames * 640,)


def test_audio_sources_and_usability(pack):
    out, index = pack
    p = Pack(out)
    got = {c.source.rsplit("/", 1)[-1]: (c.has_audio, c.audio_usable) for c in p.clips()}
    assert got["anna_clip1.mp4"] == (True, True)  # in-file track
    assert got["ben.mp4"] == (True, False)  # sidecar wav, MANIFEST says sync not confirmed
    assert got["anna_clip2.mp4"] == (False, False)
    assert {c.source.rsplit("/", 1)[-1] for c in p.clips(audio=True)} == {"anna_clip1.mp4"}
    with pytest.raises(PackError, match="no audio"):
        p.load_audio(next(c for c in p.clips() if c.source.endswith("anna_clip2.mp4")))
    assert "no audio" in _reasons(index)["anna_clip2.mp4"][1]


def test_crop_follows_the_face_and_keeps_audio_in_sync(pack):
    """The face is centred in every clip (the crop tracks the drifting face), and the mouth in
    the cropped video still opens with the clip's own audio."""
    from engine.train import lipsync as L

    p = Pack(out := pack[0])
    c = p.clips(audio=True)[0]
    frames = p.load_frames(c)
    boxes = [face.HaarFaceDetector().detect(f) for f in frames[::10]]
    centres = np.array([[b[0, 0] + b[0, 2] / 2, b[0, 1] + b[0, 3] / 2] for b in boxes if len(b)])
    assert len(centres) >= len(boxes) - 1
    assert np.abs(centres[:, 0] - 48).max() < 10 and np.abs(centres[:, 1] - 50).max() < 12
    corr, lag = L.lipsync_score(L.mouth_opening(frames, "proxy"),
                                L.speech_envelope(p.load_audio(c), len(frames)))
    assert corr > 0.6 and abs(lag) <= 1, (corr, lag, out)


def test_skipped_files_and_reasons(pack):
    out, index = pack
    r = _reasons(index)
    assert r["wall.mp4"][0] == "skipped" and r["wall.mp4"][1].startswith("no face")
    assert r["broken.mp4"][0] == "skipped" and r["broken.mp4"][1].startswith("unreadable")
    assert r["blink.mp4"][0] == "skipped" and r["blink.mp4"][1].startswith("too short")
    on_disk = json.loads((out / "index.json").read_text())
    assert {s["source"].rsplit("/", 1)[-1] for s in on_disk["skipped"]} == {"wall.mp4", "broken.mp4", "blink.mp4"}
    assert on_disk["stats"]["clips"] == 6


def test_identity_and_split_are_deterministic(pack):
    _, index = pack
    ids = {c["source"].rsplit("/", 1)[-1]: c["identity"] for c in index["clips"]}
    assert ids["anna_clip1.mp4"] == ids["anna_clip2.mp4"] == "anna"
    for c in index["clips"]:
        assert c["split"] == split_of(c["identity"], 10.0)
    splits = [split_of(f"person{i}", 10.0) for i in range(2000)]
    assert 0.07 < splits.count("val") / 2000 < 0.13
    assert splits == [split_of(f"person{i}", 10.0) for i in range(2000)]


@pytest.mark.parametrize("name,identity", [
    ("styletalk__video_Obama_clip2", "styletalk__video_obama"),
    ("styletalk__video_feifeili_clip2_short", "styletalk__video_feifeili"),
    ("dreamtalk__clip_video_M030_front_angry_level3_001", "dreamtalk__m030"),
    ("LipNet__GRID_bbaf2n", "lipnet__grid_bbaf2n"),
])
def test_identity_rule(tmp_path, name, identity):
    assert identity_of(tmp_path / f"{name}.mp4") == identity
    assert identity_of(tmp_path / "x_spk7_take1.mp4", regex=r"spk(\d+)") == "7"


def test_time_map_handles_odd_frame_rates():
    pts = np.arange(133) / 22.131  # 6.01 s
    j = time_map(pts, 25)
    assert len(j) == int((pts[-1] + 1 / 22.131) * 25)
    assert np.all(np.diff(j) >= 0) and np.all(np.abs(pts[j] - np.arange(len(j)) / 25) <= 0.5 / 22.131 + 1e-9)


def test_cut_clips_equal_parts_and_segments():
    seg = np.array([0] * 230 + [-1] * 10 + [1] * 20 + [2] * 30)
    assert cut_clips(seg, max_len=100, min_len=25) == [(0, 77), (77, 153), (153, 230), (260, 290)]


def test_track_smooths_jitter_and_ignores_one_off_false_faces():
    rng = np.random.default_rng(0)
    samples = []
    for i in range(0, 250, 5):
        b = np.array([[100 + rng.normal(0, 2), 80 + rng.normal(0, 2), 60 + rng.normal(0, 2)]])
        box = np.array([[b[0, 0], b[0, 1], b[0, 2], b[0, 2]]], np.float32)
        if i == 120:  # one false detection elsewhere, the real face missed
            box = np.array([[250, 20, 70, 70]], np.float32)
        samples.append((i, box))
    tr = face.build_track(samples, 250, 25.0)
    assert set(np.unique(tr.segment)) == {0}
    assert np.std(np.diff(tr.cx)) < 0.5 and np.ptp(tr.size) < 8
    boxes = face.crop_boxes(tr.cx, tr.cy, tr.size, 640, 480)
    assert np.ptp(boxes[:, 2]) < 1e-6  # small motion -> one fixed box for the clip


def test_cli_bad_source_is_one_line_error(tmp_path, capsys):
    assert cli.main(["--src", str(tmp_path / "nowhere"), "--out", str(tmp_path / "p"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no such file or directory" in err and "\n" not in err


def test_pack_reader_errors(tmp_path):
    with pytest.raises(PackError, match="not a pack"):
        Pack(tmp_path)
    (tmp_path / "index.json").write_text('{"version": 99}')
    with pytest.raises(PackError, match="version"):
        Pack(tmp_path)


def test_cache_path_stays_inside_pack(pack):
    p = Pack(pack[0])
    c = p.cache_path("latents/vae-tiny.safetensors")
    assert c.parent.is_dir() and c.is_relative_to(pack[0])
    with pytest.raises(ValueError):
        p.cache_path("../escape.npy")


def test_manifest_rules_for_usable_audio():
    from engine.train.prepare import audio_trusted

    assert audio_trusted(None)
    assert audio_trusted({"has_audio": "paired:x.wav", "content_note": "video has no audio track, speech in paired wav"})
    assert not audio_trusted({"has_audio": "yes", "content_note": "lip sync NOT confirmed (weak)"})
    assert not audio_trusted({"has_audio": "yes", "content_note": "expressions; no audio or silent track"})
    assert not audio_trusted({"has_audio": "silent track", "content_note": ""})


def test_bundle_takes_one_split_and_is_a_pack(pack, tmp_path, capsys):
    """`avacast bundle`: a size-capped copy of one split's clips (talking clips first) that reads as a pack;
    --split val makes the compact pack `avacast eval` carries to a GPU slot."""
    import shutil

    from engine.cli import main

    root, index = pack
    src = tmp_path / "pack"
    shutil.copytree(root, src)
    val_id = index["clips"][0]["id"]
    edited = dict(index, clips=[dict(c, split="val" if c["id"] == val_id else "train") for c in index["clips"]])
    (src / "index.json").write_text(json.dumps(edited))
    assert main(["bundle", "--pack", str(src), "--out", str(tmp_path / "val"), "--split", "val"]) == 0
    val = Pack(tmp_path / "val")
    assert [c.id for c in val.clips("val")] == [val_id] and not val.clips("train")
    assert main(["bundle", "--pack", str(src), "--out", str(tmp_path / "tr"), "--audio-only"]) == 0
    train = Pack(tmp_path / "tr")
    assert val_id not in [c.id for c in train.clips("train")]
    assert train.clips("train") and all(c.audio_usable for c in train.clips("train"))
    assert main(["bundle", "--pack", str(src), "--out", str(tmp_path / "none"), "--cap-mb", "0.001"]) == 0
    assert "0 of" in capsys.readouterr().out
    assert main(["bundle", "--pack", str(src), "--out", str(tmp_path / "x"), "--shard", "3/2"]) == 2
