import numpy as np
import pytest

from app import demo, faces
from app.avatars import AvatarError, AvatarStore
from app.settings import MAX_IMAGES, Settings


def test_face_found_and_crop_is_square_inside_image():
    rgb = demo.portrait(800)
    big = np.zeros((1200, 1600, 3), np.uint8)
    big[200:1000, 400:1200] = rgb
    report = faces.analyse(big)
    assert len(report.faces) == 1 and report.warnings == []
    x, y, size = report.crop
    fx, fy, fw, fh = report.faces[0]
    assert x <= fx and y <= fy and x + size >= fx + fw and y + size >= fy + fh  # face inside
    assert size > fw * 1.5  # head and shoulders, not just the face
    assert 0 <= x and 0 <= y and x + size <= 1600 and y + size <= 1200


@pytest.mark.parametrize("image, expect", [
    (np.full((400, 400, 3), 120, np.uint8), "No face"),
    (demo.portrait(500, faces=2), "2 faces"),
    (demo.portrait(200), "Low resolution"),
])
def test_warnings(image, expect):
    assert any(expect in w for w in faces.analyse(image).warnings)


def test_clamp_crop_fits_oversized_and_outside_crops():
    assert faces.clamp_crop((-50, -50, 2000), 640, 480) == (0, 0, 480)
    assert faces.clamp_crop((600, 10, 100), 640, 480) == (540, 10, 100)


def test_images_are_copied_so_deleting_the_original_keeps_the_avatar(face_png):
    store = AvatarStore()
    avatar = store.create("Me")
    entry, report = store.add_image(avatar, face_png)
    face_png.unlink()
    refs = store.references(avatar)
    assert len(refs) == 1 and refs[0].shape == (report.crop[2], report.crop[2], 3)
    assert store.image_path(avatar, entry).is_relative_to(store.root)


def test_limits_and_bad_files(face_png, tmp_path):
    store = AvatarStore()
    avatar = store.create("Me")
    for _ in range(MAX_IMAGES):
        store.add_image(avatar, face_png)
    with pytest.raises(AvatarError, match="at most 8"):
        store.add_image(avatar, face_png)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    other = store.create("Other")
    with pytest.raises(AvatarError, match="not an image"):
        store.add_image(other, bad)
    assert other.images == []


def test_reorder_and_remove(face_png, two_faces_png):
    store = AvatarStore()
    avatar = store.create("Me")
    first, _ = store.add_image(avatar, face_png)
    second, _ = store.add_image(avatar, two_faces_png)
    store.move_image(avatar, 1, 0)
    assert avatar.images == [second, first]
    store.remove_image(avatar, 0)
    assert avatar.images == [first]
    assert not store.image_path(avatar, second).exists()


def test_default_avatar_absent_portrait_is_graceful(monkeypatch, face_png):
    from app import paths
    s = Settings()
    monkeypatch.setattr(paths, "default_portrait", lambda: None)
    assert AvatarStore().ensure_default(s) is None and s.avatars == []
    monkeypatch.setattr(paths, "default_portrait", lambda: face_png)
    avatar = AvatarStore().ensure_default(s)
    assert s.active_avatar == avatar.id and len(avatar.images) == 1
