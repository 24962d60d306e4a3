"""Offline rendering (engine.runtime.offline) and the all-or-nothing video writer it feeds."""
import numpy as np
import pytest

from engine.api import Cancelled, frame_count, iter_render
from engine.io.media import MediaError, video_info, write_video


def test_frames_come_one_by_one_and_do_not_depend_on_the_chunk(tiny_engine, portrait, speech):
    audio = np.concatenate([speech, speech[:6766]])  # 2.42 s: not a whole number of blocks
    whole = list(iter_render(tiny_engine.open_session([portrait], seed=3), audio))
    it = iter_render(tiny_engine.open_session([portrait], seed=3), audio, chunk=2560)
    first = next(it)  # a frame before the rest of the file is rendered
    chunked = [first, *it]
    assert len(whole) == len(chunked) == frame_count(audio) == round(len(audio) / 16000 * 25)
    assert all(np.array_equal(a, b) for a, b in zip(whole, chunked))
    assert whole[0].dtype == np.uint8 and whole[0].shape[2] == 3


def test_cancel_stops_the_render_between_chunks(tiny_engine, portrait, speech):
    made, asked = [], []

    def cancel():
        asked.append(len(made))
        return len(made) >= 5

    with pytest.raises(Cancelled):
        for rgb in iter_render(tiny_engine.open_session([portrait]), speech, chunk=640, cancel=cancel):
            made.append(rgb)
    assert 5 <= len(made) < frame_count(speech) and asked[-1] >= 5


def test_a_failed_or_cancelled_write_keeps_the_old_file_and_leaves_no_partial(tmp_path):
    out = tmp_path / "talk.mp4"
    out.write_bytes(b"the user's earlier video")

    def frames():
        for _ in range(10):
            yield np.zeros((32, 32, 3), np.uint8)
        raise Cancelled

    with pytest.raises(Cancelled):
        write_video(out, frames())
    with pytest.raises(MediaError, match="RGB uint8"):
        write_video(out, [np.zeros((32, 32), np.uint8)])
    assert out.read_bytes() == b"the user's earlier video"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.mp4"]
    assert write_video(out, (np.full((32, 32, 3), i, np.uint8) for i in range(12)), audio=np.zeros(8000)) == 12
    info = video_info(out)
    assert info.n_frames == 12 and info.has_audio
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.mp4"]
