"""`avacast compare`: two eval reports paired clip by clip (issue 4: decide by the eval numbers)."""
import json
import math

import pytest

from engine.cli import main
from engine.train.compare import compare, sign_test_p


def _report(lipsync: list[float], silence: list[float], ids=None) -> dict:
    ids = ids or [f"c{i}" for i in range(len(lipsync))]
    return {"vae": {"clips": [{"id": i, "psnr_1": 20.0} for i in ids]},
            "generation": {"clips": [{"id": i, "gen_lipsync": ls, "gen_silence_opening": s}
                                     for i, ls, s in zip(ids, lipsync, silence)]}}


def test_sign_test_matches_the_binomial_distribution():
    assert sign_test_p(12, 0) == pytest.approx(2 / 4096)
    assert sign_test_p(6, 6) == 1.0 and sign_test_p(0, 0) == 1.0
    assert sign_test_p(8, 3) == pytest.approx(2 * sum(math.comb(11, i) for i in range(4)) / 2048)


def test_pairs_clips_by_id_and_counts_better_in_each_metrics_direction():
    old = _report([0.1, 0.2, 0.3, 0.4], [1.0, 1.0, 1.0, 1.0])
    new = _report([0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 1.2, 0.7])  # same lip sync per clip; silence lower on 3
    old["generation"]["clips"].append({"id": "c4", "gen_lipsync": float("nan"), "gen_silence_opening": None})
    new["generation"]["clips"].append({"id": "c4", "gen_lipsync": 0.9, "gen_silence_opening": 0.1})  # no pair
    new["generation"]["clips"] = new["generation"]["clips"][::-1]  # row order must not matter
    rows = {r["metric"]: r for r in compare(new, old)}
    ls = rows["lip-sync score"]
    assert ls["diff"] == pytest.approx(0) and (ls["better"], ls["worse"]) == (0, 0) and ls["t"] is None
    sil = rows["mouth opening in silence / speech"]  # lower is better
    assert (sil["better"], sil["worse"]) == (3, 1) and sil["diff"] == pytest.approx(-0.25)
    assert rows["VAE PSNR, 1 reference (dB)"]["clips"] == 4 and ls["clips"] == 4 and sil["clips"] == 4


def test_reports_of_other_clips_cannot_be_compared(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_report([0.1], [1.0], ids=["x"])))
    b.write_text(json.dumps(_report([0.1], [1.0], ids=["y"])))
    assert main(["compare", str(a), str(b)]) == 2
    assert "share no clip" in capsys.readouterr().err
    b.write_text("{not json")
    assert main(["compare", str(a), str(b)]) == 2
    assert "not a JSON eval report" in capsys.readouterr().err
    b.write_text(json.dumps(_report([0.0, 0.1], [1.0, 1.0], ids=["x", "z"])))
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "| lip-sync score | 1 | 0.1 | 0 | +0.1 | 1 / 0 |" in out


def test_renders_from_other_portraits_never_pair():
    """Renders of a clip from its own frame and from portraits (or from other portraits) are other
    experiments: their generation rows do not pair, the VAE rows still do; likeness is then to the portrait."""
    own, faces = _report([0.1, 0.2], [1.0, 1.0]), _report([0.3, 0.4], [1.0, 1.0])
    for row, who in zip(faces["generation"]["clips"], (["ann", "ben"], ["ben", "ann"])):
        row["portraits"], row["gen_psnr_after_1s"] = who, 22.0
    faces["config"] = {"portraits": ["ann", "ben"]}
    assert {r["metric"] for r in compare(faces, own)} == {"VAE PSNR, 1 reference (dB)"}
    again = json.loads(json.dumps(faces))
    again["generation"]["clips"][1]["portraits"] = ["cat", "ann"]
    rows = {r["metric"]: r for r in compare(faces, again)}
    assert rows["lip-sync score"]["clips"] == 1 and rows["PSNR to the portrait after 1 s (dB)"]["clips"] == 1


def test_mouth_metrics_of_reports_measured_differently_are_not_paired(tmp_path, capsys):
    """A landmarks report against an image-proxy report: lip sync and mouth opening are left out, with a note
    (the two methods disagree clip by clip); likeness and the VAE still pair."""
    new, old = _report([0.4, 0.5], [0.5, 0.6]), _report([0.1, 0.2], [1.0, 1.0])
    new["mouth_opening_method"], old["mouth_opening_method"] = "landmarks", "proxy"
    assert {r["metric"] for r in compare(new, old)} == {"VAE PSNR, 1 reference (dB)"}
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(new))
    b.write_text(json.dumps(old))
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "lip-sync score" not in out and "measured the mouth by landmarks, the other by proxy" in out
    old["mouth_opening_method"] = "landmarks"
    assert "lip-sync score" in {r["metric"] for r in compare(new, old)}


def test_the_lip_sync_ceiling_is_paired_like_the_other_mouth_metrics():
    """Two VAEs' round trips of the same clips (the eval's "ceiling" part) pair clip by clip; like the other
    mouth metrics they are left out when the reports measured the mouth by different methods."""
    old, new = _report([0.1, 0.1], [1.0, 1.0]), _report([0.1, 0.1], [1.0, 1.0])
    old["ceiling"] = {"clips": [{"id": "c0", "vae_lipsync": 0.1}, {"id": "c1", "vae_lipsync": 0.2}]}
    new["ceiling"] = {"clips": [{"id": "c0", "vae_lipsync": 0.3}, {"id": "c1", "vae_lipsync": 0.25}]}
    row = {r["metric"]: r for r in compare(new, old)}["lip-sync ceiling (the real clip through the VAE)"]
    assert (row["better"], row["worse"], row["clips"]) == (2, 0, 2) and row["diff"] == pytest.approx(0.125)
    new["mouth_opening_method"], old["mouth_opening_method"] = "landmarks", "proxy"
    assert not any("ceiling" in r["metric"] for r in compare(new, old))
