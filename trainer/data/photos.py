"""Real photographs from Debian packages (wallpapers and OpenCV's sample photos): install, index,
split by image, random crops.

Only the photographs are used (abstract/rendered wallpapers are left out); the list is explicit
below. Several files of one wallpaper (e.g. KDE's per-resolution copies) form one *image id* and
stay on one side of the train/validation split. Nothing here is committed: the files are read from
``/usr/share`` after ``apt-get install`` (see :func:`install`).

Crops: an image is held in memory at several scales (short side 160, 256, 384 and 512 px, resized
with PIL's antialiasing Lanczos filter, never upsampled: a small photo has fewer scales); a sample picks a scale at random (scale jitter), a random
``crop x crop`` window and a random horizontal flip. Output is uint8 RGB; see :class:`PhotoCrops`.
"""
from __future__ import annotations

import fnmatch
import glob
import hashlib
import json
import os
import subprocess
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

PACKAGES = ["lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04", "mate-backgrounds", "plasma-workspace-wallpapers",
            "opencv-doc"]

# Photographs only (abstract and rendered wallpapers left out), chosen by looking at each wallpaper.
PLASMA_PHOTOS = ["BytheWater", "ColdRipple", "ColorfulCups", "EveningGlow", "FallenLeaf", "Grey", "OneStandsOut", "Path"]
LOMIRI_1604_PHOTOS = ["Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace",
                      "Picture_1A_by_freespace", "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi",
                      "friends_by_Aitzol_Berasategi", "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi",
                      "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi"]
LOMIRI_2004_PHOTOS = ["Kleiber_by_Lukas_Baubkus"]
# OpenCV's sample photographs (opencv-doc): people, animals, food, buildings, objects; one file per scene
# (aero1 not aero3, aloeL not aloeR, leuvenA not leuvenB, rubberwhale1 not 2, ela_original not ela_modified).
OPENCV_DATA = "/usr/share/doc/opencv-doc/examples/data"
OPENCV_PHOTOS = ["aero1.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg", "board.jpg", "building.jpg", "butterfly.jpg",
                 "chicky_512.png", "ela_original.jpg", "fruits.jpg", "home.jpg", "leuvenA.jpg", "messi5.jpg",
                 "orange.jpg", "rubberwhale1.png", "squirrel_cls.jpg", "stuff.jpg"]
MATE_NATURE = ["Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops", "Storm",
               "TwoWings", "Wood", "YellowFlower"]


# Held out for validation, by whole image id (never seen in training).
VALIDATION_IDS = {"EveningGlow", "Dragonfly_by_Bolly", "LadyBird", "picosdeeuropa_by_Aitzol_Berasategi",
                  "opencv-building", "opencv-squirrel_cls"}

SCALES = (160, 256, 384, 512)


@dataclass(frozen=True)
class PhotoFile:
    """One indexed photograph: ``image_id`` groups resolutions of one wallpaper; ``path`` is the largest file."""

    image_id: str
    package: str
    path: str


def _dep5(package: str) -> list[dict[str, str]]:
    """Paragraphs of a Debian machine-readable copyright file (DEP-5), continuation lines joined."""
    path = f"/usr/share/doc/{package}/copyright"
    if not os.path.exists(path):
        return []
    paras, cur, key = [], {}, None
    for line in open(path, encoding="utf-8", errors="replace"):
        if not line.strip():
            if cur:
                paras.append(cur)
            cur, key = {}, None
        elif line[0] in " \t" and key:
            cur[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, val = line.partition(":")
            cur[key] = val.strip()
    if cur:
        paras.append(cur)
    return paras


def provenance(photo: PhotoFile) -> dict[str, str]:
    """Author and licence of one photo: KDE's per-wallpaper ``metadata.json`` for Plasma wallpapers,
    else the last matching ``Files:`` paragraph of the package's DEP-5 copyright file.
    Returns ``{"copyright", "license", "source"}`` (``"unknown"`` where nothing matched)."""
    if photo.package == "plasma-workspace-wallpapers":
        meta = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(photo.path))), "metadata.json")
        if os.path.exists(meta):
            kp = json.load(open(meta)).get("KPlugin", {})
            authors = ", ".join(a.get("Name", "") for a in kp.get("Authors", []))
            return {"copyright": authors or "KDE Visual Design Group", "license": kp.get("License", "unknown"),
                    "source": meta}
    found = {"copyright": "unknown", "license": "unknown", "source": f"/usr/share/doc/{photo.package}/copyright"}
    # OpenCV's installed examples/data/X is samples/data/X in its source tree, which DEP-5 patterns name.
    source_path = "samples/data/" + os.path.basename(photo.path) if photo.package == "opencv-doc" else None
    for para in _dep5(photo.package):
        patterns = para.get("Files", "").split()
        if source_path is not None:
            hit = any(fnmatch.fnmatch(source_path, pat) for pat in patterns)
        else:
            hit = "*" in patterns or any(fnmatch.fnmatch(photo.path, "*/" + pat) or
                                         os.path.basename(pat) == os.path.basename(photo.path) for pat in patterns)
        if hit:
            found = {**found, "copyright": para.get("Copyright", "unknown").replace("\n", "; "),
                     "license": para.get("License", "unknown").split("\n")[0]}
    return found


def install(packages: list[str] | None = None) -> None:
    """Install the wallpaper packages with apt-get (needs root; a no-op when they are present).

    Raises:
        subprocess.CalledProcessError: when apt-get fails.
    """
    packages = packages or PACKAGES
    missing = [p for p in packages if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]
    if missing:
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *missing], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def _largest(paths: list[str]) -> str:
    return max(paths, key=os.path.getsize)


def index() -> list[PhotoFile]:
    """List the photographs present on this machine, one entry per image id, sorted by id.

    Raises:
        FileNotFoundError: if none of the packages' photos is installed (run ``python3 -m trainer data fetch``).
    """
    out: list[PhotoFile] = []
    for name in PLASMA_PHOTOS:
        files = glob.glob(f"/usr/share/wallpapers/{name}/contents/images/*")
        if files:
            out.append(PhotoFile(name, "plasma-workspace-wallpapers", _largest(files)))
    for pkg, names in (("lomiri-wallpapers-16.04", LOMIRI_1604_PHOTOS), ("lomiri-wallpapers-20.04", LOMIRI_2004_PHOTOS)):
        for name in names:
            f = f"/usr/share/backgrounds/{name}.jpg"
            if os.path.exists(f):
                out.append(PhotoFile(name, pkg, f))
    for name in MATE_NATURE:
        f = f"/usr/share/backgrounds/mate/nature/{name}.jpg"
        if os.path.exists(f):
            out.append(PhotoFile(name, "mate-backgrounds", f))
    for name in OPENCV_PHOTOS:
        f = os.path.join(OPENCV_DATA, name)
        if os.path.exists(f):
            out.append(PhotoFile("opencv-" + os.path.splitext(name)[0], "opencv-doc", f))
    if not out:
        raise FileNotFoundError("no training photographs found; run: /usr/bin/python3 -m trainer data fetch")
    return sorted(out, key=lambda p: p.image_id)


def split(photos: list[PhotoFile]) -> tuple[list[PhotoFile], list[PhotoFile]]:
    """Split by whole image id: ``(train, validation)``; validation ids are :data:`VALIDATION_IDS`."""
    train = [p for p in photos if p.image_id not in VALIDATION_IDS]
    val = [p for p in photos if p.image_id in VALIDATION_IDS]
    return train, val


def sha256(path: str) -> str:
    """Hex sha256 of a file (provenance in the manifest)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_rgb(path: str, short_side: int | None = None) -> np.ndarray:
    """Decode a photo to H x W x 3 uint8 RGB; optionally resize (Lanczos) so its short side is ``short_side``.
    A photo whose short side is already at most ``short_side`` keeps its size (never upsampled)."""
    im = Image.open(path)
    if short_side is not None:
        im.draft("RGB", (short_side * 2, short_side * 2))
    im = im.convert("RGB")
    if short_side is not None and min(im.size) > short_side:
        s = short_side / min(im.size)
        im = im.resize((max(1, round(im.size[0] * s)), max(1, round(im.size[1] * s))), Image.LANCZOS)
    return np.asarray(im)


class PhotoCrops:
    """Random training crops with scale jitter and flips, drawn with a seeded generator.

    Args:
        photos: the image ids to draw from.
        crop: crop side in pixels (a multiple of 4).
        scales: short sides of the in-memory pyramid.
        seed: seed of the sampler (same seed, same batches).
    ``batch(n)`` -> uint8 tensor n x 3 x crop x crop (RGB, NCHW).
    """

    def __init__(self, photos: list[PhotoFile], crop: int = 64, scales: tuple[int, ...] = SCALES, seed: int = 0) -> None:
        self.crop = crop
        self.pyramid = []
        for p in photos:
            native = min(Image.open(p.path).size)
            # Scales above the photo's own short side collapse into one native-size copy (no upsampling).
            for s in sorted({min(s, native) for s in scales}):
                img = torch.from_numpy(load_rgb(p.path, max(s, crop)).copy()).permute(2, 0, 1).contiguous()
                if min(img.shape[1:]) >= crop:
                    self.pyramid.append(img)
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> torch.Tensor:
        out = torch.empty(n, 3, self.crop, self.crop, dtype=torch.uint8)
        for i in range(n):
            img = self.pyramid[self.rng.integers(len(self.pyramid))]
            _, h, w = img.shape
            y, x = self.rng.integers(h - self.crop + 1), self.rng.integers(w - self.crop + 1)
            c = img[:, y:y + self.crop, x:x + self.crop]
            out[i] = c.flip(-1) if self.rng.random() < 0.5 else c
        return out


def fetch_main(args) -> int:
    """The ``data fetch`` verb: :func:`install` the photo packages, then print the photo index as JSON
    (``{"train": [...], "validation": [...]}``, one :class:`PhotoFile` each). Returns 0."""
    import json
    install()
    train, val = split(index())
    print(json.dumps({"train": [vars(q) for q in train], "validation": [vars(q) for q in val]}, indent=2))
    return 0
