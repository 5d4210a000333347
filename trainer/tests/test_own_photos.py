"""``--photos DIR``: a folder of the user's own images trains (streamed from disk), exports and gives a manifest,
for the colorizer and the inpainter; non-image files are not listed, unreadable ones skipped when drawn;
validation holds out at least one."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from trainer.data import photos

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture()
def folder(tmp_path):
    d = tmp_path / "mine"
    (d / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, (name, fmt) in enumerate([("a.jpg", "JPEG"), ("b.png", "PNG"), ("c.webp", "WEBP"), ("sub/d.jpg", "JPEG"),
                                     ("sub/e.png", "PNG"), ("f.JPG", "JPEG")]):
        y, x = np.mgrid[0:120, 0:160]
        img = np.stack([(x * (i + 1)) % 256, (y * 2 + 40 * i) % 256, rng.integers(0, 256, (120, 160))], -1).astype(np.uint8)
        Image.fromarray(img).save(d / name, fmt)
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (d / "notes.txt").write_text("not an image")
    return d


def test_index_lists_images_and_holds_out_one(folder):
    coll = photos.parse_collections(str(folder))
    assert coll == ("dir:" + str(folder),)
    assert photos.is_streamed(coll) and not photos.is_streamed(("wallpapers",))
    found = photos.index(coll)
    # listed by extension without opening (a big folder lists in seconds): broken.jpg is skipped when drawn
    assert len(found) == 7 and not any(p.path.endswith("notes.txt") for p in found)
    train, val = photos.split(found)
    assert len(val) >= 1 and len(train) + len(val) == 7
    records = photos.train_photo_records(train, sha=False)
    assert len(records) == len(train) and all(r["license"].startswith("unknown") for r in records)
    assert photos.packages_of(coll) == []
    with pytest.raises(ValueError):
        photos.parse_collections(str(folder / "nope"))


def _run(*args):
    r = subprocess.run([sys.executable, "-m", "trainer", *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r


def test_colorizer_and_inpainter_train_and_export_from_a_folder(folder, tmp_path):
    c = tmp_path / "c"
    _run("colorize", "train", "--out", str(c), "--steps", "2", "--ngf", "8", "--n-blocks", "1", "--batch", "2", "--crop", "32",
         "--threads", "1", "--log-every", "1", "--ckpt-every", "1", "--photos", str(folder), "--prior-crops", "8", "--val-crops", "2", "--val-crop", "32")
    _run("colorize", "export", str(c / "final.pt"), "--out-dir", str(tmp_path / "mc"), "--version", "0.0.1", "--name", "mine-colorize")
    man = json.load(open(tmp_path / "mc" / "manifest.json"))
    assert man["training"]["data"]["collections"] == ["dir:" + str(folder)]
    assert len(man["training"]["data"]["train_photos"]) >= 4
    assert os.path.getsize(tmp_path / "mc" / "model.onnx") > 1000
    i = tmp_path / "i"
    _run("inpaint", "train", "--out", str(i), "--steps", "2", "--width", "4", "--entities", "4", "--batch", "2", "--crop", "64",
         "--threads", "1", "--log-every", "1", "--ckpt-every", "1", "--photos", str(folder), "--val-crops", "2", "--scales", "96,128")
    _run("inpaint", "export", str(i / "best.pt"), "--out-dir", str(tmp_path / "mi"), "--version", "0.0.1", "--name", "mine-inpaint")
    assert json.load(open(tmp_path / "mi" / "manifest.json"))["task"] == "inpaint"
