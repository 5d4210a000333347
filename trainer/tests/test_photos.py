"""The photo collections (issue 14): the Qt resource reader on GCompris' real files, collection names,
the stable validation hold-out, provenance for every photo, and no test photo among the training photos."""
import glob
import io
import os

import numpy as np
import pytest
from PIL import Image

from trainer.data import photos, test_photos
from trainer.data.qt_rcc import entries

HAVE_NEW = all(os.path.exists(p) for p in (photos.GCOMPRIS_RCC, photos.ENDLESS_SKY_LAND))
needs_new = pytest.mark.skipif(not HAVE_NEW, reason="issue 14's photo packages not installed (scripts/setup.sh --trainer)")


def test_parse_collections():
    assert photos.parse_collections(None) == photos.DEFAULT_COLLECTIONS == ("wallpapers", "opencv")
    assert photos.parse_collections("all") == photos.ALL_COLLECTIONS
    assert photos.parse_collections("gcompris, lxqt") == ("gcompris", "lxqt")
    with pytest.raises(ValueError, match="unknown photo collection"):
        photos.parse_collections("gcompris,paintings")


def test_validation_hold_out_is_stable_and_about_one_in_sixteen():
    assert photos.is_validation("EveningGlow") and not photos.is_validation("BytheWater")
    ids = [f"endless-sky-x{i}" for i in range(4000)]
    share = np.mean([photos.is_validation(i) for i in ids])
    assert 0.04 < share < 0.09
    assert [photos.is_validation(i) for i in ids[:50]] == [photos.is_validation(i) for i in ids[:50]]
    assert not photos.is_validation("Wood")  # old collections: only the listed ids


def test_rcc_reader_rejects_other_files(tmp_path):
    bad = tmp_path / "x.rcc"
    bad.write_bytes(b"PK\x03\x04not a resource file")
    with pytest.raises(ValueError, match="not a Qt resource file"):
        list(entries(str(bad)))


@needs_new
def test_rcc_reader_on_gcompris_files():
    files = dict(entries(os.path.join(photos.GCOMPRIS_RCC, "erase.rcc")))
    assert any(k.endswith("/erase/resource/gorilla.webp") for k in files)
    blob = next(v for k, v in files.items() if k.endswith("gorilla.webp"))
    im = Image.open(io.BytesIO(blob))
    assert im.size == (1920, 1080) and np.asarray(im.convert("RGB")).std() > 10


@needs_new
def test_all_collections_index_with_provenance_and_split():
    ps = photos.index(photos.ALL_COLLECTIONS)
    ids = [p.image_id for p in ps]
    assert len(ids) == len(set(ids)) and len(ps) > 550
    train, val = photos.split(ps)
    assert len(val) >= 40 and not {p.image_id for p in train} & {p.image_id for p in val}
    assert {p.package for p in ps} == set(photos.packages_of(photos.ALL_COLLECTIONS))
    for p in ps:  # every photo has a licence and an author from its package's copyright file
        pv = photos.provenance(p)
        assert pv["license"] != "unknown" and pv["copyright"] != "unknown", p
        assert "NC" not in pv["license"], p  # no non-commercial licence
    assert not [p for p in ps if any(d in p.path for d in photos.GCOMPRIS_DROP)]  # paintings left out
    assert len(photos.index()) < 60  # the default collections are the old set


@needs_new
def test_no_test_photo_is_a_training_photo():
    """Every test photo against every photo of every collection: no near-copy (correlation of 24 x 24
    gray thumbnails above 0.95; the closest pair today is 0.81)."""
    def thumb(a):
        v = np.asarray(Image.fromarray(a).convert("L").resize((24, 24), Image.BILINEAR), np.float32).ravel()
        v -= v.mean()
        return v / (np.linalg.norm(v) + 1e-6)
    tests = np.stack([thumb(test_photos.load(n, None)) for n in test_photos.NAMES])
    for p in photos.index(photos.ALL_COLLECTIONS):
        im = Image.open(p.path)
        im.draft("RGB", (200, 200))
        corr = tests @ thumb(np.asarray(im.convert("RGB")))
        assert corr.max() < 0.95, (p.image_id, test_photos.NAMES[int(corr.argmax())], float(corr.max()))
