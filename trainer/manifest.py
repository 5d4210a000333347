"""The model manifest writer every export uses (``models/NAME/manifest.json``, schema ``src/models/manifest.ts``).
Imports nothing of the trainer's, so the export, graph-rewrite and explain modules all sit above it."""
from __future__ import annotations

import json
import math
import os


def finite_json(value):
    """``value`` (nested dicts / lists / numbers) with every non-finite float (NaN, ±inf: a per-photo metric with
    nothing to measure) replaced by None, so it serializes as strict JSON (``null``), which Node's JSON.parse reads."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def write_manifest(out_dir: str, manifest: dict, notice_text: str | None = None) -> None:
    """Write ``out_dir/manifest.json`` (indented strict JSON, newline-terminated, non-finite numbers as null:
    :func:`finite_json`; schema ``src/models/manifest.ts``) and, when given, ``out_dir/NOTICE`` (:func:`notice`).
    The one writer of every task's export."""
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(finite_json(manifest), f, indent=2, allow_nan=False)
        f.write("\n")
    if notice_text is not None:
        with open(os.path.join(out_dir, "NOTICE"), "w") as f:
            f.write(notice_text)


def scale_out(args: dict) -> dict:
    """A manifest's ``training.scale_out``, from the training checkpoint's saved options ``args`` (a dict): the
    ``precision`` of the forward pass (fp32 | bf16 | fp16), the number of processes (``world_size``) and the
    global batch they shared (``global_batch``, samples per optimizer step). Runs from before these options
    existed trained in fp32 in one process."""
    world = int(args.get("world_size", 1))
    return {"precision": args.get("precision", "fp32"), "world_size": world, "global_batch": args.get("batch"),
            "batch_per_process": args["batch"] // world if args.get("batch") else None}
