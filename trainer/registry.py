"""What each task adds to the trainer's shared verbs, registered by the task itself (the core imports no task).

The core needs, for a model folder, what only its task knows: the PyTorch module its ``model.onnx`` was exported
from (``trainer/explain.py``'s parity fixture: ``served``), one calibration input prepared as the service prepares
it and the task's own quality score of an output (:mod:`trainer.int8`: ``int8_sample``, ``int8_score``). Each
task's ``cli.py`` registers its hooks with :func:`add` by name (``"trainer.pkg.module:function"``): nothing is
imported until one is used. :func:`find` imports the task command-line modules (light: argparse only) by their
package names, then the matching hook.
"""
from __future__ import annotations

import importlib
import json
import os
from typing import Callable

TASK_PACKAGES = ("trainer.colorize", "trainer.inpaint", "trainer.upscale", "trainer.generate")
_HOOKS: dict[str, list[tuple[Callable[[dict], bool], str]]] = {}


def add(kind: str, match: Callable[[dict], bool], target: str) -> None:
    """Register ``target`` (``"module:function"``) as the ``kind`` hook of the model folders whose manifest
    ``match`` accepts. Kinds: ``served`` (:func:`load_served`), ``int8_sample`` (:func:`find`; a function
    ``(rgb uint8 H x W x 3 photo crop, sample index, seed, manifest) -> {input name: float32 array}`` that prepares
    one calibration input as the service would, for :mod:`trainer.int8`), ``int8_score`` (the task's own quality
    scores of fp32 vs int8 outputs, :func:`trainer.int8.scores`)."""
    hooks = _HOOKS.setdefault(kind, [])
    if (match, target) not in hooks:
        hooks.append((match, target))


def add_served(match: Callable[[dict], bool], target: str) -> None:
    """Register ``target`` (``"module:function"``, called ``function(manifest, checkpoint) -> torch.nn.Module``
    in eval mode, with the served inputs and output) for the model folders whose manifest ``match`` accepts."""
    add("served", match, target)


def find(kind: str, manifest: dict) -> Callable:
    """The ``kind`` hook registered for ``manifest`` (imported on first use). Raises ValueError when none is."""
    for pkg in TASK_PACKAGES:
        importlib.import_module(pkg + ".cli")
    for match, target in _HOOKS.get(kind, []):
        if match(manifest):
            module, _, func = target.partition(":")
            return getattr(importlib.import_module(module), func)
    raise ValueError(f"no {kind} hook registered for task {manifest.get('task')!r} ({manifest.get('name')})")


def load_served(model_dir: str, checkpoint: str):
    """The PyTorch model behind ``model_dir`` (``models/NAME``) from ``checkpoint``, as its export served it.

    Raises:
        ValueError: no task registered a loader for this manifest.
        OSError / KeyError: an unreadable manifest or checkpoint.
    """
    manifest = json.load(open(os.path.join(model_dir, "manifest.json")))
    return find("served", manifest)(manifest, checkpoint)
