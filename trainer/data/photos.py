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

from .stream import FileCrops, crop_flip, list_images, load_rgb, no_skips, sample_rng  # noqa: F401 (load_rgb re-exported)

PACKAGES = ["lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04", "mate-backgrounds", "plasma-workspace-wallpapers",
            "opencv-doc"]  # the DEFAULT_COLLECTIONS' packages (see COLLECTION_PACKAGES for all)

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


# Photographs of the collections added for the colorizer (issue 14), each looked at on a contact sheet.
ENDLESS_SKY_LAND = "/usr/share/games/endless-sky/plugins/endless-sky-high-dpi/images/land"
ENDLESS_SKY_DROP = ("nasa8", "nasa9", "space6")  # processed planet imagery (Jupiter), a coloured light tunnel
TUXTYPE_PHOTOS = ["kcas%d.jpg" % i for i in range(12)]
# Packages whose copyright file is not machine-readable: what it says of the photos used.
PLAIN_PROVENANCE = {"tuxtype-data": {"copyright": "NOAA and U.S. Fish and Wildlife Service photographs (README_IMAGES.TXT "
                                                  "in /usr/share/doc/tuxtype-data/copyright)", "license": "public-domain"}}
TUXPAINT_TEMPLATES = "/usr/share/tuxpaint/templates"
LXQT_PHOTOS = ["Butterfly-Kenneth-Wimer.jpg", "Valendas.png", "after-the-rain.jpg", "appleflower.png", "beam.png",
               "butterfly.png", "cloud.png", "drop.png", "flowers.png", "fog.jpg", "this-is-not-windows.jpg"]
PALAPELI_PHOTOS = ["castle-maintenon.jpg", "cincinnati-bridge.jpg", "citrus-fruits.jpg", "european-honey-bee.jpg",
                   "panther-chameleon-female.jpg"]
# GCompris (gcompris-qt-data): photographs inside Qt resource files; the activities whose pictures are photos.
# ``lang`` (drawings), ``paintings`` and the paintings of ``details`` (Van Gogh & co.) are left out.
GCOMPRIS_RCC = "/usr/share/gcompris-qt/rcc"
GCOMPRIS_ACTIVITIES = ["categorization", "explore_monuments", "erase", "details", "explore_world_animals",
                       "explore_farm_animals", "explore_world_music"]
GCOMPRIS_DROP = ("Gogh", "Portrait", "Eglise")
GCOMPRIS_MIN_SIDE = 200
NEW_ID_PREFIXES = ("endless-sky-", "gcompris-", "tuxpaint-", "tuxtype-", "lxqt-", "palapeli-")
CACHE = os.environ.get("NORMGEN_PHOTO_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "normgen", "photos"))

# Named photo collections (``--photos``). DEFAULT is the set behind the models shipped before issue 14.
COLLECTION_PACKAGES = {
    "wallpapers": ["lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04", "mate-backgrounds", "plasma-workspace-wallpapers"],
    "opencv": ["opencv-doc"],
    "endless-sky": ["endless-sky-high-dpi"],
    "gcompris": ["gcompris-qt-data"],
    "tuxpaint": ["tuxpaint-data"],
    "tuxtype": ["tuxtype-data"],
    "lxqt": ["lxqt-themes"],
    "palapeli": ["palapeli-data"],
}
DEFAULT_COLLECTIONS = ("wallpapers", "opencv")
ALL_COLLECTIONS = tuple(COLLECTION_PACKAGES)

# Held out for validation, by whole image id (never seen in training). The collections added in issue 14
# put one image id in 16 into validation, chosen by a hash of the id (:func:`is_validation`).
VALIDATION_IDS = {"EveningGlow", "Dragonfly_by_Bolly", "LadyBird", "picosdeeuropa_by_Aitzol_Berasategi",
                  "opencv-building", "opencv-squirrel_cls"}

SCALES = (160, 256, 384, 512)


@dataclass(frozen=True)
class PhotoFile:
    """One indexed photograph: ``image_id`` groups resolutions of one wallpaper; ``path`` is the largest file."""

    image_id: str
    package: str
    path: str
    source: str = ""  # path inside the package's source tree, for DEP-5 matching (extracted resources)


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
    if is_dir_collection(photo.package):
        return {"copyright": "the user's own image", "license": "unknown (the user's)", "source": photo.package}
    found = {"copyright": "unknown", "license": "unknown", "source": f"/usr/share/doc/{photo.package}/copyright"}
    if photo.package in PLAIN_PROVENANCE:
        return {**found, **PLAIN_PROVENANCE[photo.package]}
    # OpenCV's installed examples/data/X is samples/data/X in its source tree, which DEP-5 patterns name.
    source_path = "samples/data/" + os.path.basename(photo.path) if photo.package == "opencv-doc" else None
    sources = None
    if photo.source:  # an extracted resource: its source path, under any image extension (rcc holds .webp copies)
        stem = os.path.splitext(photo.source)[0]
        sources = [stem + e for e in (".jpg", ".jpeg", ".JPG", ".png", ".webp", ".svg")]
    for para in _dep5(photo.package):
        patterns = para.get("Files", "").split()
        if sources is not None:
            hit = "*" in patterns or any(fnmatch.fnmatch(src, pat) for src in sources for pat in patterns)
        elif source_path is not None:
            hit = any(fnmatch.fnmatch(source_path, pat) for pat in patterns)
        else:
            hit = "*" in patterns or any(fnmatch.fnmatch(photo.path, "*/" + pat) or
                                         os.path.basename(pat) == os.path.basename(photo.path) for pat in patterns)
        if hit:
            found = {**found, "copyright": para.get("Copyright", "unknown").replace("\n", "; "),
                     "license": para.get("License", "unknown").split("\n")[0]}
    return found


#: Extensions of the images ``--photos DIR`` indexes (anything PIL opens among them; others are skipped).
OWN_RECORD_CAP = 1000  # a user's folder with more training photos is recorded by folder and count


def train_photo_records(train_set: list[PhotoFile], sha: bool = True) -> list[dict]:
    """The manifest's ``training.data.train_photos``: one record per photo (id, package, file, sha256 when ``sha``,
    author and licence: :func:`provenance`); a user's folder with more than :data:`OWN_RECORD_CAP` photos is one
    record ``{"folder", "count", "license"}`` instead (a million-photo folder is not hashed into a manifest)."""
    by_folder: dict[str, list[PhotoFile]] = {}
    for p in train_set:
        if is_dir_collection(p.package):
            by_folder.setdefault(p.package, []).append(p)
    big = {f for f, ps in by_folder.items() if len(ps) > OWN_RECORD_CAP}
    out = [{"folder": f[4:], "count": len(by_folder[f]), "license": "unknown (the user's)"} for f in sorted(big)]
    for p in train_set:
        if p.package not in big:
            out.append({"id": p.image_id, "package": p.package, "file": p.path,
                        **({"sha256": sha256(p.path)} if sha else {}), **provenance(p)})
    return out


def is_dir_collection(name: str) -> bool:
    """A collection that is a folder of the user's own images (``dir:PATH``, see :func:`parse_collections`)."""
    return name.startswith("dir:")


def packages_of(collections: tuple[str, ...] | list[str]) -> list[str]:
    """Debian packages behind the named collections (ValueError for an unknown name); folders (``dir:``) have none."""
    unknown = [c for c in collections if c not in COLLECTION_PACKAGES and not is_dir_collection(c)]
    if unknown:
        raise ValueError(f"unknown photo collection(s) {unknown}; known: {', '.join(COLLECTION_PACKAGES)}")
    return [p for c in collections if not is_dir_collection(c) for p in COLLECTION_PACKAGES[c]]


def parse_collections(text: str | None) -> tuple[str, ...]:
    """``--photos`` value: comma-separated collection names, ``all``, folders of the user's own images (a path
    to an existing directory, or ``dir:PATH``; combinable: ``all,~/photos``), text files listing image paths
    (``PATH.txt``, one per line), or None/"" for :data:`DEFAULT_COLLECTIONS`. Folders and lists become
    ``dir:<absolute path>`` and are streamed from disk (:func:`is_streamed`).

    Raises:
        ValueError: for an unknown name (neither a collection nor an existing folder).
    """
    if not text:
        return DEFAULT_COLLECTIONS
    names: list[str] = []
    for n in (n.strip() for n in text.split(",") if n.strip()):
        if n == "all":
            names += [c for c in ALL_COLLECTIONS if c not in names]
        elif n in COLLECTION_PACKAGES:
            names.append(n)
        else:
            path = os.path.expanduser(n[4:] if n.startswith("dir:") else n)
            if not (os.path.isdir(path) or (os.path.isfile(path) and path.endswith(".txt"))):
                raise ValueError(f"--photos: unknown photo collection {n!r}, not a folder and not a .txt list of paths "
                                 f"(collections: {', '.join(COLLECTION_PACKAGES)}, all)")
            names.append("dir:" + os.path.abspath(path))
    return tuple(names)


def _own(spec: str) -> list[PhotoFile]:
    """The images of a user's folder (recursively, sorted) or list file (:func:`trainer.data.stream.list_images`),
    id ``dir-<path relative to the folder / list>``. Files are not opened here (a million-photo folder lists in
    seconds): one that cannot be decoded is skipped when a sample draws it, and counted."""
    base = spec if os.path.isdir(spec) else os.path.dirname(os.path.abspath(spec))
    out = []
    for path in list_images(spec):
        rel = os.path.splitext(os.path.relpath(path, base))[0].replace(os.sep, "-")
        out.append(PhotoFile("dir-" + rel, "dir:" + spec, path))
    return out


def is_streamed(collections: tuple[str, ...] | list[str]) -> bool:
    """Whether a run on ``collections`` streams its photos from disk (:mod:`trainer.data.stream`): it does when a
    user's folder or list file is among them (any size); the Debian collections alone are held in memory."""
    return any(is_dir_collection(c) for c in collections)


def is_validation(image_id: str) -> bool:
    """Whether an image id is held out for validation: :data:`VALIDATION_IDS`, for the collections added
    in issue 14 one id in 16 by the first byte of its sha256 (stable across machines and sessions), for a
    user's folder (``dir-`` ids) one in 8 the same way (:func:`split` holds out at least one)."""
    digest = hashlib.sha256(image_id.encode()).digest()[0]
    if image_id.startswith("dir-"):
        return digest % 8 == 0
    return image_id in VALIDATION_IDS or (image_id.startswith(NEW_ID_PREFIXES) and digest % 16 == 0)


def _gcompris(out: list[PhotoFile]) -> None:
    """Extract GCompris' photographs from its ``.rcc`` files into :data:`CACHE` (once) and index them."""
    from .qt_rcc import entries
    import io
    for act in GCOMPRIS_ACTIVITIES:
        rcc = os.path.join(GCOMPRIS_RCC, f"{act}.rcc")
        if not os.path.exists(rcc):
            continue
        folder = os.path.join(CACHE, "gcompris", act)
        done = os.path.join(folder, ".complete")
        if not os.path.exists(done):
            os.makedirs(folder, exist_ok=True)
            for name, blob in entries(rcc):
                if not name.lower().endswith((".jpg", ".jpeg", ".png", ".webp")) or any(d in name for d in GCOMPRIS_DROP):
                    continue
                try:
                    size = Image.open(io.BytesIO(blob)).size
                except OSError:
                    continue
                if min(size) >= GCOMPRIS_MIN_SIDE:
                    rel = name.split("/src/activities/", 1)[1]
                    with open(os.path.join(folder, rel.replace("/", "__")), "wb") as f:
                        f.write(blob)
            open(done, "w").close()
        for fn in sorted(os.listdir(folder)):
            if fn.startswith("."):
                continue
            rel = fn.replace("__", "/")
            out.append(PhotoFile("gcompris-" + os.path.splitext(rel)[0].replace("/resource/", "/").replace("/", "-"),
                                 "gcompris-qt-data", os.path.join(folder, fn), "src/activities/" + rel))


#: Validation-only photographs that look like what users send (issue 42: vehicles, animals, sky, foliage,
#: buildings): the puzzles of ``jigzo-data``, never in any training collection. Each ``.pzl`` holds a 1024 x 1024
#: JPEG texture whose ``image x y w h`` rectangle (from the file's map) is the photo (~480 x 640). The penguin
#: is CC-BY-NC-SA: left out.
JIGZO_PACKAGE = "jigzo-data"
JIGZO_DIR = "/usr/share/games/jigzo/puzzles/00_default"
JIGZO_DROP = ("penguin",)


def jigzo_photos() -> dict[str, np.ndarray]:
    """``{"jigzo-<name>": H x W x 3 uint8}``: the jigzo puzzles' photographs (:data:`JIGZO_DIR`), decoded from the
    ``.pzl`` files (text header, then ``name`` / ``length`` / bytes entries; the RGB texture is the ``.jpg``
    entry, the photo its ``image`` rectangle). Installs :data:`JIGZO_PACKAGE` when missing (apt-get, root).
    Raises FileNotFoundError when the package cannot be installed, ValueError for a file without a photo."""
    import io
    import re
    if not os.path.isdir(JIGZO_DIR):
        install([JIGZO_PACKAGE])
    out = {}
    for path in sorted(glob.glob(os.path.join(JIGZO_DIR, "*.pzl"))):
        stem = os.path.basename(path).rsplit("-", 1)[0]
        if stem in JIGZO_DROP:
            continue
        blob = open(path, "rb").read()
        rect = re.search(rb"\nimage (\d+) (\d+) (\d+) (\d+)", blob)
        tex = None
        for m in re.finditer(rb"([\w.-]+)\.jpg\n(\d+)\n", blob):
            data = blob[m.end():m.end() + int(m.group(2))]
            im = Image.open(io.BytesIO(data))
            if im.size[0] >= 512:
                tex = im.convert("RGB")
        if rect is None or tex is None:
            raise ValueError(f"{path}: no photo rectangle or texture")
        x, y, w, h = (int(v) for v in rect.groups())
        out["jigzo-" + stem] = np.asarray(tex.crop((x, y, x + w, y + h)))
    if not out:
        raise FileNotFoundError(f"no jigzo puzzles in {JIGZO_DIR}")
    return out


def install(packages: list[str] | None = None) -> None:
    """Install the photo packages with apt-get (needs root; a no-op when they are present); default: those of
    :data:`DEFAULT_COLLECTIONS`.

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


def index(collections: tuple[str, ...] | list[str] = DEFAULT_COLLECTIONS) -> list[PhotoFile]:
    """List the photographs of the named collections present on this machine, one entry per image id,
    sorted by id. GCompris' photos are extracted from its resource files into :data:`CACHE` on first use.

    Raises:
        FileNotFoundError: if none of the packages' photos is installed (run ``python3 -m trainer data fetch``).
        ValueError: an unknown collection name.
    """
    packages_of(collections)
    out: list[PhotoFile] = []
    if "endless-sky" in collections and os.path.isdir(ENDLESS_SKY_LAND):
        for f in sorted(glob.glob(os.path.join(ENDLESS_SKY_LAND, "*.jpg"))):
            stem = os.path.basename(f).split("@")[0].rsplit(".", 1)[0]
            if stem not in ENDLESS_SKY_DROP:
                out.append(PhotoFile("endless-sky-" + stem, "endless-sky-high-dpi", f))
    if "gcompris" in collections and os.path.isdir(GCOMPRIS_RCC):
        _gcompris(out)
    for coll, pkg, folder, names in (("tuxtype", "tuxtype-data", "/usr/share/tuxtype/images", TUXTYPE_PHOTOS),
                                     ("lxqt", "lxqt-themes", "/usr/share/lxqt/wallpapers", LXQT_PHOTOS),
                                     ("palapeli", "palapeli-data", "/usr/share/palapeli/collection", PALAPELI_PHOTOS),
                                     ("tuxpaint", "tuxpaint-data", TUXPAINT_TEMPLATES,
                                      sorted(os.listdir(TUXPAINT_TEMPLATES)) if os.path.isdir(TUXPAINT_TEMPLATES) else [])):
        if coll not in collections:
            continue
        for name in names:
            f = os.path.join(folder, name)
            if os.path.exists(f) and name.lower().endswith((".jpg", ".png")):
                out.append(PhotoFile(f"{coll}-{os.path.splitext(name)[0]}", pkg, f))
    if "wallpapers" in collections:
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
    for c in collections:
        if is_dir_collection(c):
            out += _own(c[4:])
    return _checked(out + _opencv(collections))


def _opencv(collections) -> list[PhotoFile]:
    if "opencv" not in collections:
        return []
    return [PhotoFile("opencv-" + os.path.splitext(n)[0], "opencv-doc", os.path.join(OPENCV_DATA, n))
            for n in OPENCV_PHOTOS if os.path.exists(os.path.join(OPENCV_DATA, n))]


def _checked(out: list[PhotoFile]) -> list[PhotoFile]:
    if not out:
        raise FileNotFoundError("no training photographs found; run: /usr/bin/python3 -m trainer data fetch")
    return sorted(out, key=lambda p: p.image_id)


OWN_VALIDATION_CAP = 64  # validation photos kept from a user's folders (1 in 8 of the ids, at most this many)


def split(photos: list[PhotoFile]) -> tuple[list[PhotoFile], list[PhotoFile]]:
    """Split by whole image id: ``(train, validation)``; validation ids by :func:`is_validation`, at most
    :data:`OWN_VALIDATION_CAP` of them from a user's folders (the lowest sha256 of the id; the other held-out
    ids are used by neither side)."""
    train = [p for p in photos if not is_validation(p.image_id)]
    val = [p for p in photos if is_validation(p.image_id)]
    own_val = [p for p in val if p.image_id.startswith("dir-")]
    if len(own_val) > OWN_VALIDATION_CAP:  # a big folder: validation reads a fixed sample (the rest is not trained on)
        keep = set(id(p) for p in sorted(own_val, key=lambda p: hashlib.sha256(p.image_id.encode()).digest())[:OWN_VALIDATION_CAP])
        val = [p for p in val if not p.image_id.startswith("dir-") or id(p) in keep]
    # a user's folder always gives validation at least one photo (the one whose id hashes lowest), if it has two
    own = [p for p in train if p.image_id.startswith("dir-")]
    if own and not any(p.image_id.startswith("dir-") for p in val) and len(own) >= 2:
        pick = min(own, key=lambda p: hashlib.sha256(p.image_id.encode()).digest())
        train, val = [p for p in train if p is not pick], sorted(val + [pick], key=lambda p: p.image_id)
    return train, val


def sha256(path: str) -> str:
    """Hex sha256 of a file (provenance in the manifest)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class PhotoCrops:
    """Random training crops with scale jitter and flips, drawn with a seeded generator.

    Args:
        photos: the image ids to draw from.
        crop: crop side in pixels (a multiple of 4).
        scales: short sides of the in-memory pyramid.
        seed: seed of the sampler (same seed, same batches).
    ``batch(n)`` -> uint8 tensor n x 3 x crop x crop (RGB, NCHW); ``sample(k)`` -> sample k of an indexed run.
    A file that cannot be decoded is skipped (``skipped`` lists it).
    """

    def __init__(self, photos: list[PhotoFile], crop: int = 64, scales: tuple[int, ...] = SCALES, seed: int = 0) -> None:
        self.crop = crop
        self.pyramid = []
        self.skipped: list[str] = []
        for p in photos:
            try:
                with Image.open(p.path) as im:
                    native = min(im.size)
                # Scales above the photo's own short side collapse into one native-size copy (no upsampling).
                levels = [torch.from_numpy(load_rgb(p.path, max(s, crop)).copy()).permute(2, 0, 1).contiguous()
                          for s in sorted({min(s, native) for s in scales})]
            except Exception:  # noqa: BLE001 - an unreadable file of a user's folder is skipped and counted
                self.skipped.append(p.path)
                continue
            self.pyramid += [img for img in levels if min(img.shape[1:]) >= crop]
        self.rng = np.random.default_rng(seed)
        self.seed = seed

    def batch(self, n: int) -> torch.Tensor:
        out = torch.empty(n, 3, self.crop, self.crop, dtype=torch.uint8)
        for i in range(n):
            img = self.pyramid[self.rng.integers(len(self.pyramid))]
            _, h, w = img.shape
            y, x = self.rng.integers(h - self.crop + 1), self.rng.integers(w - self.crop + 1)
            c = img[:, y:y + self.crop, x:x + self.crop]
            out[i] = c.flip(-1) if self.rng.random() < 0.5 else c
        return out

    def sample(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample ``k`` of a run drawn by index (:mod:`trainer.data.stream`; multi-process training): a function of
        (the sampler's seed, ``k``) alone -> (uint8 3 x crop x crop, no skipped files). ``batch`` (one process)
        is unchanged."""
        rng = sample_rng(self.seed, k)
        img = self.pyramid[rng.integers(len(self.pyramid))]
        return crop_flip(img.permute(1, 2, 0).numpy(), self.crop, rng), no_skips()


def training_source(train_set, collections, crop: int, scales: tuple[int, ...] | list[int], seed: int):
    """The training crops of a run: :class:`FileCrops` over the training files when ``collections`` stream
    (:func:`is_streamed`; :class:`trainer.data.stream.FileCrops`), else the in-memory :class:`PhotoCrops`.
    ``train_set``: ``PhotoFile`` list (the training side of the split)."""
    if is_streamed(collections):
        return FileCrops([p.path for p in train_set], crop, scales, seed)
    return PhotoCrops(train_set, crop=crop, scales=tuple(scales), seed=seed)


def fetch_main(args) -> int:
    """The ``data fetch`` verb: :func:`install` the packages of every collection, then print their photo index as JSON
    (``{"train": [...], "validation": [...]}``, one :class:`PhotoFile` each). Returns 0."""
    import json
    install(packages_of(ALL_COLLECTIONS))
    train, val = split(index(ALL_COLLECTIONS))
    print(json.dumps({"train": [vars(q) for q in train], "validation": [vars(q) for q in val]}, indent=2))
    return 0
