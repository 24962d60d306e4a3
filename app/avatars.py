"""Avatar store: reference images copied into the app's data dir (issue 6 §6).

Images are copied so deleting or moving the originals never breaks a saved avatar. Each avatar lives
in `<data>/avatars/<id>/`; the settings file holds the ordered image list and crops.
"""
from __future__ import annotations

import logging
import shutil
import uuid
from pathlib import Path

import numpy as np

from app import faces, paths
from app.settings import MAX_IMAGES, Avatar, ImageEntry

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


class AvatarError(ValueError):
    """A user-facing problem with an avatar image (message is one actionable line)."""


def read_rgb(path: str | Path) -> np.ndarray:
    """Any image file -> RGB uint8 [H,W,3]. Reads bytes first: cv2.imread fails on non-ASCII paths."""
    import cv2

    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise AvatarError(f"cannot read {Path(path).name}: {exc.strerror or exc}") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise AvatarError(f"{Path(path).name} is not an image this app can read (use PNG or JPEG)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class AvatarStore:
    def __init__(self, root: Path | None = None):
        self.root = root or paths.avatars_dir()

    def folder(self, avatar: Avatar) -> Path:
        return self.root / avatar.id

    def image_path(self, avatar: Avatar, entry: ImageEntry) -> Path:
        return self.folder(avatar) / entry.file

    def create(self, name: str) -> Avatar:
        avatar = Avatar(id=uuid.uuid4().hex[:12], name=name.strip() or "Avatar")
        self.folder(avatar).mkdir(parents=True, exist_ok=True)
        return avatar

    def add_image(self, avatar: Avatar, source: str | Path) -> tuple[ImageEntry, faces.FaceReport]:
        """Copy `source` into the avatar; returns the entry (with proposed crop) and the face report."""
        source = Path(source)
        if len(avatar.images) >= MAX_IMAGES:
            raise AvatarError(f"an avatar holds at most {MAX_IMAGES} images; remove one first")
        if source.suffix.lower() not in IMAGE_SUFFIXES:
            raise AvatarError(f"{source.name}: unsupported file type (use PNG or JPEG)")
        rgb = read_rgb(source)
        report = faces.analyse(rgb)
        folder = self.folder(avatar)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{uuid.uuid4().hex[:8]}{source.suffix.lower()}"
        shutil.copyfile(source, folder / name)
        entry = ImageEntry(file=name, crop=report.crop)
        avatar.images.append(entry)
        return entry, report

    def remove_image(self, avatar: Avatar, index: int) -> None:
        entry = avatar.images.pop(index)
        self.image_path(avatar, entry).unlink(missing_ok=True)

    def move_image(self, avatar: Avatar, index: int, new_index: int) -> None:
        new_index = max(0, min(new_index, len(avatar.images) - 1))
        avatar.images.insert(new_index, avatar.images.pop(index))

    def delete(self, avatar: Avatar) -> None:
        shutil.rmtree(self.folder(avatar), ignore_errors=True)

    def references(self, avatar: Avatar) -> list[np.ndarray]:
        """Cropped RGB uint8 [S,S,3] references in the user's order; unreadable files are skipped."""
        refs = []
        for entry in avatar.images:
            try:
                refs.append(faces.apply_crop(read_rgb(self.image_path(avatar, entry)), entry.crop))
            except AvatarError as exc:
                log.warning("skipping reference image: %s", exc)
        return refs

    def ensure_default(self, settings) -> Avatar | None:
        """First run: make an avatar from the shipped default portrait, when this build has one."""
        if settings.avatars:
            return None
        portrait = paths.default_portrait()
        if portrait is None:
            return None
        avatar = self.create("Default")
        try:
            self.add_image(avatar, portrait)
        except AvatarError as exc:
            log.warning("default portrait unusable: %s", exc)
            self.delete(avatar)
            return None
        settings.avatars.append(avatar)
        settings.active_avatar = avatar.id
        return avatar
