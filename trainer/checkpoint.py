"""Compact copies of training checkpoints, small enough to commit (issue 14-16: ``checkpoints/TASK/``,
<= 25 MB per run, replaced in place) and still resumable with ``--resume``.

:func:`compact` keeps the trained weights (``model``, ``g``, ``d``, ``disc``) in float32, stores the EMA
weights (``ema``) in float16 (weights are O(1): 10-bit mantissa, no range problem) and the optimizer
moments (``opt``, ``opt_g``, ``opt_d``) in bfloat16 (Adam's second moments can be ~1e-12, below float16's
range, where a zero would turn the next step into ``m / eps``). ``load_state_dict`` casts them back to
the parameters' float32 on resume (``torch.optim.Optimizer.load_state_dict`` and ``Tensor.copy_``), so
no loader changes. A ``best.pt`` (``model`` = EMA weights) is stored in float16.
"""
from __future__ import annotations

import os
import sys

import torch

FP32_KEYS = ("g", "d", "disc")
FP16_KEYS = ("ema",)
BF16_KEYS = ("opt", "opt_g", "opt_d")


def cast_floats(obj, dtype: torch.dtype):
    """A copy of a (nested dict/list) state with every floating tensor of rank >= 1 cast to ``dtype`` (scalars, e.g.
    Adam's step, and integer tensors unchanged). Used by :func:`compact` and by trainers that keep a critic's
    resumable state in bfloat16."""
    if isinstance(obj, torch.Tensor):
        return obj.to(dtype) if obj.is_floating_point() and obj.dim() > 0 else obj
    if isinstance(obj, dict):
        return {k: cast_floats(v, dtype) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(cast_floats(v, dtype) for v in obj)
    return obj


def compact(src: str, dst: str) -> tuple[int, int]:
    """Write a compact copy of checkpoint ``src`` (a ``checkpoint.pt`` or a ``best.pt``) to ``dst``
    (atomically: ``dst.tmp`` then rename). Returns (bytes before, bytes after).

    Raises:
        OSError / pickle errors: ``src`` unreadable. KeyError: neither a checkpoint nor a best.pt.
    """
    ck = torch.load(src, map_location="cpu")
    is_best = "opt" not in ck and "opt_g" not in ck and "ema" not in ck
    out = dict(ck)
    if is_best:
        out["model"] = cast_floats(ck["model"], torch.float16)
    else:
        for k in FP16_KEYS:
            if k in out:
                out[k] = cast_floats(out[k], torch.float16)
        for k in BF16_KEYS:
            if out.get(k) is not None:
                out[k] = cast_floats(out[k], torch.bfloat16)
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    torch.save(out, dst + ".tmp")
    os.replace(dst + ".tmp", dst)
    return os.path.getsize(src), os.path.getsize(dst)


def compact_main(args) -> int:
    """The ``checkpoint compact`` verb: ``SRC DST`` pairs; prints the sizes; exit 1 if one is over 25 MB."""
    status = 0
    for src, dst in zip(args.paths[::2], args.paths[1::2]):
        before, after = compact(src, dst)
        print(f"[compact] {src} {before / 2**20:.1f} MiB -> {dst} {after / 2**20:.1f} MiB")
        if after > 25 * 2**20:
            print(f"error: {dst} is over 25 MiB", file=sys.stderr)
            status = 1
    return status
