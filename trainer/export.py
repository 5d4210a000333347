"""The one ONNX exporter of the trainer, shared by every task's ``export`` verb, and the provenance
helpers every manifest uses (git commit, NOTICE text of the training photographs).

Each task's own export (``trainer/colorize/export.py``, ``trainer/inpaint/export.py``,
``trainer/generate/export.py``) writes its graph with :func:`export_onnx`, then its parity fixture and
``models/<name>/manifest.json`` (schema: ``src/models/manifest.ts``).
"""
from __future__ import annotations

import json
import os
import subprocess

import torch

from .data import photos
from .manifest import finite_json, write_manifest  # noqa: F401 (the tasks' exports import them from here)

OPSET = 17

def export_onnx(model: torch.nn.Module, path: str, example: tuple[torch.Tensor, ...] | None = None,
                input_names: tuple[str, ...] = ("gray",), output_names: tuple[str, ...] = ("rgb",),
                dynamic_axes: dict[str, dict[int, str]] | None = None) -> list[str]:
    """Trace ``model`` to ONNX (opset :data:`OPSET`) at ``path``, check the graph and that it has no
    random op (AN's self-sampling must be off in eval mode), then apply :func:`trainer.graph.rewrite` (the same
    function in a form onnxruntime runs faster). Returns the names of the rewrites applied, for the manifest's
    ``onnx.rewrites``. The defaults are the colorizer's: one 1 x 1 x 64 x 64 input ``gray`` -> ``rgb``, dynamic
    N, H, W on every input and output.

    Raises:
        ValueError: when the exported graph contains a Random* op.
        torch/onnx errors: on tracing or checker failures.
    """
    import onnx
    example = example if example is not None else (torch.zeros(1, 1, 64, 64),)
    nhw = {0: "batch", 2: "height", 3: "width"}
    dynamic_axes = dynamic_axes or {n: nhw for n in (*input_names, *output_names)}
    import warnings
    # The tracer warns about every Python-level shape check of our layers (they hold for the traced sizes and the
    # checker plus the parity fixture verify the graph) and about ONNX shape inference internals: ~12 lines of
    # noise per export that say nothing about the model. Errors still raise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx")
        torch.onnx.export(model, example, path, opset_version=OPSET, input_names=list(input_names),
                          output_names=list(output_names), dynamic_axes=dynamic_axes, do_constant_folding=True)
    graph = onnx.load(path)
    onnx.checker.check_model(graph)
    random_ops = sorted({n.op_type for n in graph.graph.node if "Random" in n.op_type})
    if random_ops:
        raise ValueError(f"{path}: the exported graph has random ops {random_ops}")
    # the serving-speed rewrites (trainer/graph.py: e.g. the colour head's softmax expectation), same function
    from .graph import rewrite
    applied = rewrite(graph)
    if applied:
        onnx.save(graph, path)
    return applied


def git_commit() -> str:
    """HEAD's commit hash, or "unknown" outside a git checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def notice(name: str, what: str, train_photos: list[photos.PhotoFile]) -> str:
    """NOTICE text of model ``name`` (``what`` says what it is, e.g. "a PONO-MS colorizer"): it is derived from
    these photographs; each one's author and licence, read
    from the package's copyright file (or KDE's metadata.json)."""
    lines = [f"normgen {name}: {what} trained by the normgen project.",
             "",
             "The weights were trained on the photographs below, from Debian packages. The photographs are",
             "not redistributed here; the model is derived from them. Attribution:", ""]
    for r in photos.train_photo_records(train_photos, sha=False):
        if "folder" in r:
            lines.append(f"- {r['count']} of the user's own images in {r['folder']} (licence: the user's)")
        else:
            lines.append(f"- \"{r['id']}\" by {r['copyright']}, licence {r['license']}; Debian package {r['package']}, {r['file']}")
    lines += ["", "Licence texts: CC-BY-4.0 https://creativecommons.org/licenses/by/4.0/ ;",
              "CC-BY-SA-3.0 https://creativecommons.org/licenses/by-sa/3.0/ ; CC-BY-SA-4.0 https://creativecommons.org/licenses/by-sa/4.0/ ;",
              "GPL-2+ and LGPL-3 as in /usr/share/common-licenses on Debian.", ""]
    return "\n".join(lines)


def write_fixture(out_dir: str, x, y, input_name: str, output_name: str, source: str) -> dict:
    """A one-input parity fixture for ``test/parity.test.ts``: ``x`` and ``y`` (float32 numpy arrays, NCHW: the
    model's input and PyTorch's output for it) as little-endian ``input.f32`` / ``output.f32`` in ``out_dir``, and
    ``fixture.json`` with their names, dims, ``source`` (where the pixels come from) and tolerance 1e-4.
    Returns that description."""
    import torch
    os.makedirs(out_dir, exist_ok=True)
    x.astype("<f4").tofile(os.path.join(out_dir, "input.f32"))
    y.astype("<f4").tofile(os.path.join(out_dir, "output.f32"))
    desc = {"source": source,
            "input": {"name": input_name, "dims": list(x.shape), "file": "input.f32", "dtype": "float32-le"},
            "output": {"name": output_name, "dims": list(y.shape), "file": "output.f32", "dtype": "float32-le"},
            "tolerance_max_abs": 1e-4, "torch_version": torch.__version__}
    with open(os.path.join(out_dir, "fixture.json"), "w") as f:
        json.dump(desc, f, indent=2)
    return desc
