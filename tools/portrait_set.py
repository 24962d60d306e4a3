"""The unseen-portrait set of `avacast eval --portraits` (docs/TRAINING.md round 13): 12 single-face photos of
../shared/data/ref_images whose people are not in the training pack, cropped as the app crops a portrait and
resized to the model's view, so a machine without the face detector uses them with --no-crop.

    PYTHONPATH=. python tools/portrait_set.py ../shared/data/ref_images OUT [--size 256]

The photos are research-use material (../shared/data/README.md): the set stays outside git."""
import argparse
import sys
from pathlib import Path

import cv2

from engine.cli.common import crop_portrait
from engine.io.media import read_image
from engine.train.evaluate import model_view

PORTRAITS = {  # name -> file in ref_images (open-mouthed: d38, leijun, lacamoire, astronaut)
    "astronaut": "scikit-image__astronaut.png", "s9": "LivePortrait__assets_examples_source_s9.jpg",
    "s12": "LivePortrait__assets_examples_source_s12.jpg", "s2": "LivePortrait__assets_examples_source_s2.jpg",
    "d30": "LivePortrait__assets_examples_driving_d30.jpg", "d38": "LivePortrait__assets_examples_driving_d38.jpg",
    "leijun": "EDTalk__test_data_leijun.png", "musk": "MuseTalk__assets_demo_musk_musk.png",
    "biden": "face_recognition__examples_biden.jpg",
    "lacamoire": "face_recognition__examples_knn_examples_train_alex_lacamoire_img1.jpg",
    "harington": "face_recognition__examples_knn_examples_train_kit_harington_john1.jpeg",
    "leslie": "face_recognition__examples_knn_examples_train_rose_leslie_img1.jpg",
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="the ref_images folder")
    p.add_argument("out", help="folder for NAME.png")
    p.add_argument("--size", type=int, default=256)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, file in PORTRAITS.items():
        path = Path(args.src) / file
        if not path.is_file():
            print(f"missing: {path}", file=sys.stderr)
            return 1
        view = model_view(crop_portrait(read_image(path), str(path), "portrait_set"), args.size)  # [S,S,3] RGB
        if not cv2.imwrite(str(out / f"{name}.png"), view[..., ::-1]):
            print(f"cannot write {out / name}.png", file=sys.stderr)
            return 1
    print(f"wrote {len(PORTRAITS)} portraits to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
