"""Training samples drawn by global index, streamed from disk by ``DataLoader`` workers (scales out with
:mod:`trainer.distributed`).

A training run is a sequence of samples numbered ``k = step * B + i`` (B the global batch). Sample k is a pure
function of ``(seed, k)``: its photo, scale, crop window, flip and the task's own randomness (degradation,
mask, hints) come from ``numpy.random.default_rng([seed, k])``. So any process can draw any sample: rank r of W
draws ``i`` in ``[r B / W, (r + 1) B / W)`` of each step, W processes see exactly the batches one process sees,
and a checkpoint (which stores only the step) resumes in any world size.

Sources of crops (each has ``sample(k) -> (uint8 3 x crop x crop RGB crop, int64 BAD_SLOTS skipped-file slots)``):

- :class:`FileCrops`: a list of image files (a folder tree of JPEG / PNG / WebP / ..., or a text file with one path
  per line: :func:`list_images`), decoded per sample (PIL, JPEG draft mode: a 12 MP JPEG decodes at 1/2 to
  1/8 scale when the chosen short side allows), resized to a random short side of ``scales`` (never upsampled),
  cropped and flipped. Nothing is held in memory: RSS stays flat however many files there are. A file that cannot
  be decoded, or whose short side is below the crop, is skipped (another file is drawn) and counted.
- :class:`trainer.data.photos.PhotoCrops`: the in-memory pyramid of the Debian collections, the same ``sample(k)``.

:class:`IndexedBatches` runs a source and a task's per-sample function in ``DataLoader`` workers (``--workers``)
and yields this rank's share of each step's batch.
"""
from __future__ import annotations

import os
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif")
MAX_TRIES = 32  # draws per sample before giving up (most files unreadable)
BAD_SLOTS = 8  # unreadable file indices a sample reports back (for the distinct count)


def sample_rng(seed: int, k: int, stream: int = 0) -> np.random.Generator:
    """The generator of sample ``k`` (``stream`` separates independent uses: 0 = the crop, 1 = the task's
    augmentation, ...). Same ``(seed, k, stream)``, same draws, in any process."""
    return np.random.default_rng([seed, stream, k])


def list_images(spec: str) -> list[str]:
    """The image files of ``spec``: a folder (recursively, sorted, by extension :data:`IMAGE_EXTENSIONS`,
    case-insensitive) or a text file with one path per line (``#`` comments and blank lines ignored; relative
    paths are relative to the list's folder). Files are not opened here.

    Raises:
        FileNotFoundError: ``spec`` is neither a folder nor a file, or lists no image.
    """
    spec = os.path.expanduser(spec)
    out: list[str] = []
    if os.path.isdir(spec):
        for root, dirs, files in os.walk(spec):
            dirs.sort()
            out += [os.path.join(root, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS)]
    elif os.path.isfile(spec):
        base = os.path.dirname(os.path.abspath(spec))
        with open(spec, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    out.append(os.path.normpath(line if os.path.isabs(line) else os.path.join(base, line)))
    else:
        raise FileNotFoundError(f"--photos {spec}: neither a folder nor a list file")
    if not out:
        raise FileNotFoundError(f"--photos {spec}: no image files ({', '.join(IMAGE_EXTENSIONS)})")
    return out


def load_rgb(path: str, short_side: int | None = None) -> np.ndarray:
    """Decode a photo to H x W x 3 uint8 RGB; optionally resize (Lanczos) so its short side is ``short_side`` px
    (JPEG draft mode first: a 12 MP JPEG decodes at 1/2 to 1/8 scale when the target allows). A photo whose short
    side is already at most ``short_side`` keeps its size (never upsampled). Raises whatever PIL raises for an
    unreadable file (OSError / PIL.UnidentifiedImageError)."""
    with Image.open(path) as im:
        if short_side is not None:
            im.draft("RGB", (short_side * 2, short_side * 2))
        im = im.convert("RGB")
    if short_side is not None and min(im.size) > short_side:
        s = short_side / min(im.size)
        im = im.resize((max(1, round(im.size[0] * s)), max(1, round(im.size[1] * s))), Image.LANCZOS)
    return np.asarray(im)


def no_skips() -> torch.Tensor:
    """The skipped-file slots of a sample that skipped nothing: int64 ``BAD_SLOTS``, all -1."""
    return torch.full((BAD_SLOTS,), -1, dtype=torch.int64)


def crop_flip(img: np.ndarray, crop: int, rng: np.random.Generator) -> torch.Tensor:
    """A random ``crop`` x ``crop`` window of H x W x 3 uint8 ``img`` (both sides >= crop), flipped left-right
    with probability 1/2 (draws: row, column, flip, in that order): uint8 3 x crop x crop."""
    h, w = img.shape[:2]
    y, x = rng.integers(h - crop + 1), rng.integers(w - crop + 1)
    c = img[y:y + crop, x:x + crop]
    if rng.random() < 0.5:
        c = c[:, ::-1]
    return torch.from_numpy(np.ascontiguousarray(c)).permute(2, 0, 1).contiguous()


class FileCrops:
    """Crops streamed from image files (module docstring).

    Args:
        paths: the image files (:func:`list_images`).
        crop: crop side in pixels.
        scales: short sides (px) a sample's photo is resized to, one chosen per sample (scale jitter).
        seed: the run's data seed.
    ``sample(k)`` -> (uint8 3 x crop x crop, int64 ``BAD_SLOTS`` indices of the files skipped on the way, -1 padded).
    Raises RuntimeError when ``MAX_TRIES`` draws in a row fail (the folder is mostly unreadable).
    """

    def __init__(self, paths: Sequence[str], crop: int, scales: Sequence[int], seed: int) -> None:
        self.paths, self.crop, self.scales, self.seed = list(paths), crop, tuple(scales), seed

    def __len__(self) -> int:
        return len(self.paths)

    def sample(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = sample_rng(self.seed, k)
        bad: list[int] = []
        for _ in range(MAX_TRIES):
            i = int(rng.integers(len(self.paths)))
            side = max(self.crop, int(self.scales[rng.integers(len(self.scales))]))
            try:
                img = load_rgb(self.paths[i], side)
            except Exception:  # noqa: BLE001 - any file PIL cannot decode is skipped and counted
                img = None
            if img is None or min(img.shape[:2]) < self.crop:
                bad.append(i)
                continue
            slots = no_skips()
            slots[: min(len(bad), BAD_SLOTS)] = torch.tensor(bad[:BAD_SLOTS], dtype=torch.int64)
            return crop_flip(img, self.crop, rng), slots
        raise RuntimeError(f"{MAX_TRIES} files in a row could not be decoded or were smaller than {self.crop} px "
                           f"(last: {self.paths[bad[-1]]})")


class _Samples(torch.utils.data.Dataset):
    """Map-style dataset over global sample indices: item k = ``make(k, crop)`` + the skipped-file slots."""

    def __init__(self, source, make: Callable[[int, torch.Tensor], tuple]) -> None:
        self.source, self.make = source, make

    def __len__(self) -> int:  # indices are unbounded; the batch sampler decides which are drawn
        return 2 ** 62

    def __getitem__(self, k: int):
        crop, bad = self.source.sample(k)
        return (*self.make(k, crop), bad)


class _StepShares(torch.utils.data.Sampler):
    """Yields, for each step in ``[start, stop)``, this rank's list of global sample indices."""

    def __init__(self, start: int, stop: int, batch: int, lo: int, hi: int) -> None:
        self.start, self.stop, self.batch, self.lo, self.hi = start, stop, batch, lo, hi

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.stop):
            yield [step * self.batch + i for i in range(self.lo, self.hi)]

    def __len__(self) -> int:
        return self.stop - self.start


class IndexedBatches:
    """This rank's share of every step's batch, made in ``workers`` background processes (0 = in this one).

    Args:
        source: ``FileCrops`` or ``PhotoCrops`` (anything whose ``sample(k)`` returns (uint8 crop, skipped slots)).
        make: the task's per-sample function ``(k, uint8 3 x c x c crop) -> tuple of tensors`` (the training pair;
            its randomness from :func:`sample_rng` ``(seed, k, 1)``), run in the workers.
        batch: the global batch B; ``share``: this rank's ``(lo, hi)`` (:meth:`trainer.distributed.Runtime.share`).
        start / stop: the steps to draw (a resumed run starts at its checkpoint's step).
    Iterating yields the collated tuple (each tensor ``hi - lo`` x ...) per step; ``skipped`` is the set of file
    indices found unreadable (or too small) so far in this process's share.
    """

    def __init__(self, source, make, batch: int, share: tuple[int, int], start: int, stop: int, workers: int = 0) -> None:
        self.skipped: set[int] = set()
        extra = {"num_workers": workers, "prefetch_factor": 2, "persistent_workers": True} if workers else {}
        self.loader = torch.utils.data.DataLoader(_Samples(source, make),
                                                  batch_sampler=_StepShares(start, stop, batch, *share), **extra)
        self._it = iter(self.loader)

    def next(self) -> tuple:
        """The next step's tensors (without the skipped slots, which go to ``skipped``)."""
        *tensors, bad = next(self._it)
        self.skipped.update(int(i) for i in bad.flatten().tolist() if i >= 0)
        return tuple(tensors)


class Sequential:
    """``batch(n)`` over an indexed source: samples ``start``, ``start + 1``, ... in order (a fixed set drawn the
    same way in every process, e.g. the crops an ab prior is counted on)."""

    def __init__(self, source, start: int = 0) -> None:
        self.source, self.k = source, start

    def batch(self, n: int) -> torch.Tensor:
        out = [self.source.sample(k)[0] for k in range(self.k, self.k + n)]
        self.k += n
        return torch.stack(out)
