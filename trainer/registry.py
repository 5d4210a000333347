"""What each task adds to the trainer's shared verbs, registered by the task itself (the core imports no task).

The core (``trainer/explain.py``'s parity fixture) needs, for a model folder, the PyTorch module its ``model.onnx``
was exported from. Each task's ``cli.py`` registers a loader for the models it exports with :func:`add_served`,
by name (``"trainer.pkg.module:function"``): nothing is imported until one is used. :func:`load_served` imports
the task command-line modules (light: argparse only) by their package names, then the matching loader.
"""
from __future__ import annotations

import importlib
import json
import os
from typing import Callable

TASK_PACKAGES = ("trainer.colorize", "trainer.inpaint", "trainer.upscale", "trainer.generate")
_SERVED: list[tuple[Callable[[dict], bool], str]] = []


def add_served(match: Callable[[dict], bool], target: str) -> None:
    """Register ``target`` (``"module:function"``, called ``function(manifest, checkpoint) -> torch.nn.Module``
    in eval mode, with the served inputs and output) for the model folders whose manifest ``match`` accepts."""
    if (match, target) not in _SERVED:
        _SERVED.append((match, target))


def load_served(model_dir: str, checkpoint: str):
    """The PyTorch model behind ``model_dir`` (``models/NAME``) from ``checkpoint``, as its export served it.

    Raises:
        ValueError: no task registered a loader for this manifest.
        OSError / KeyError: an unreadable manifest or checkpoint.
    """
    for pkg in TASK_PACKAGES:
        importlib.import_module(pkg + ".cli")
    manifest = json.load(open(os.path.join(model_dir, "manifest.json")))
    for match, target in _SERVED:
        if match(manifest):
            module, _, func = target.partition(":")
            return getattr(importlib.import_module(module), func)(manifest, checkpoint)
    raise ValueError(f"no PyTorch loader registered for task {manifest.get('task')!r} ({model_dir})")
