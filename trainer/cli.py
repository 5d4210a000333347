"""Shared pieces of the trainer's command line (``python3 -m trainer TASK VERB [options]``).

Each task package (``trainer/colorize``, ``trainer/inpaint``, ``trainer/generate``) has a ``cli.py``
whose ``register(subparsers)`` adds its verbs with :func:`verb`; the options live there, free of torch
imports, so ``--help`` at every level is quick. A verb names its implementation as
``"module:function"``; :func:`run` imports it only when the verb runs.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """A verb's ``--help``: its description as written, and every option's default."""


def verb(sub: argparse._SubParsersAction, name: str, target: str, help: str, doc: str | None = None) -> argparse.ArgumentParser:
    """Add verb ``name`` to a task's subparsers; ``target`` is ``"trainer.pkg.module:function"``, called
    with the parsed ``argparse.Namespace``. ``doc`` (default ``help``) is the verb's ``--help`` text."""
    p = sub.add_parser(name, help=help, description=doc or help, formatter_class=_HelpFormatter)
    p.set_defaults(target=target)
    return p


def add_runtime(p: argparse.ArgumentParser, seed: int = 0) -> None:
    """``--device`` (cpu | cuda), ``--threads`` (torch intra-op threads, default: all cores), ``--seed``."""
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch intra-op threads (default: cores)")
    p.add_argument("--seed", type=int, default=seed)


def add_run_folder(p: argparse.ArgumentParser, log_every: int = 100, ckpt_every: int = 250) -> None:
    """``--out`` (run folder), ``--log-every``, ``--ckpt-every``, ``--resume`` (continue ``<out>/checkpoint.pt``),
    ``--stop-at`` (checkpoint and exit early at a step; the learning-rate schedule still follows ``--steps``),
    and :func:`add_scale_out`'s ``--workers`` and ``--precision``."""
    p.add_argument("--out", required=True, help="run folder (checkpoint.pt, final.pt, summary.json, ...)")
    p.add_argument("--log-every", type=int, default=log_every, help="progress (+ validation) every N steps")
    p.add_argument("--ckpt-every", type=int, default=ckpt_every, help="write <out>/checkpoint.pt every N steps")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt (weights, optimizer, step, RNG)")
    p.add_argument("--stop-at", type=int, default=0,
                   help="write the checkpoint and exit after this step, without changing the --steps schedule "
                        "(an equal-budget ablation point; 0 = run to --steps)")
    add_scale_out(p)


def add_scale_out(p: argparse.ArgumentParser) -> None:
    """What every training loop takes for scaling out (:mod:`trainer.distributed`, :mod:`trainer.data.stream`):
    ``--workers`` (DataLoader processes that decode and crop) and ``--precision`` (fp32 | bf16 | fp16)."""
    p.add_argument("--workers", type=int, default=0,
                   help="DataLoader worker processes that decode, crop and augment (0 = in the training process; "
                        "> 0 draws samples by index, as under torchrun)")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                   help="autocast of the forward pass: bf16 (CPU or CUDA), fp16 (CUDA, with a gradient scaler)")


def add_export(p: argparse.ArgumentParser, name: str) -> None:
    """The options every ``TASK export`` shares: the checkpoint, ``--out-dir``, ``--name`` (default
    ``name``), ``--version``, ``--default`` (serving.default) and ``--command`` (the training command,
    recorded in the manifest)."""
    p.add_argument("checkpoint")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--name", default=name)
    p.add_argument("--version", default="1.0.0")
    p.add_argument("--default", action="store_true",
                   help="serving.default: make it the task's default model (only one per task may be; the bundled one is)")
    p.add_argument("--command", help="the exact training command(s), for the manifest")


def add_curve(sub: argparse._SubParsersAction, keys: str) -> argparse.ArgumentParser:
    """The ``curve`` verb of a task (``trainer.curves``): runs to plot, ``--plot`` PNG, ``--keys`` (default
    ``keys``, comma-separated record keys, one panel each), ``--title``."""
    c = verb(sub, "curve", "trainer.curves:curve_main", "plot validation curves of runs (curve.json or a training log) as a PNG")
    c.add_argument("runs", nargs="+", help="label=RUN_DIR (its curve.json), a curve.json or a training log")
    c.add_argument("--plot", required=True, help="the PNG to write")
    c.add_argument("--keys", default=keys, help="comma-separated record keys, one panel each")
    c.add_argument("--title", default="")
    return c


def run(args: argparse.Namespace) -> int:
    """Run the verb parsed into ``args`` (its ``target``); returns the exit status (2 for ``--device
    cuda`` without CUDA; a training function's summary dict counts as success). A process that joined a
    torchrun process group exits here (``os._exit``, stdout flushed) instead of returning."""
    if getattr(args, "device", "cpu") == "cuda":
        import torch
        if not torch.cuda.is_available():
            print("error: --device cuda but torch.cuda.is_available() is False", file=sys.stderr)
            return 2
    module, _, func = args.target.partition(":")
    result = getattr(importlib.import_module(module), func)(args)
    status = result if isinstance(result, int) else 0
    if "torch" in sys.modules:  # a torchrun worker: leave without the gloo/DDP teardown (trainer.distributed.exit_process)
        from .distributed import exit_process
        exit_process(status)
    return status
