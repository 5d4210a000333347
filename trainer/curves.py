"""Training curves of the colorizer and the inpainter as small PNGs (issues 14, 15): validation (and
training loss) against the step, one line per run.

Records come from a run's ``curve.json`` (one JSON object per validation, appended by ``TASK train``)
or, for runs started before that file existed, from the ``[train] step N/M key value ...`` lines of
its log (:func:`from_log`). Used by the ``colorize curve`` and ``inpaint curve`` verbs.
"""
from __future__ import annotations

import json
import os
import re

_STEP = re.compile(r"^\[train\] step (\d+)/\d+ (.*)$")
_PAIR = re.compile(r"([a-z][a-z0-9_]*) ([-+]?\d+(?:\.\d+)?)(?:dB|x)?\b")


def from_log(path: str) -> list[dict]:
    """Records ``{"step": N, key: value, ...}`` parsed from a training log's ``[train] step`` lines."""
    out = []
    for line in open(path, encoding="utf-8", errors="replace"):
        m = _STEP.match(line.strip())
        if m:
            rec = {"step": int(m.group(1))}
            rec.update({k: float(v) for k, v in _PAIR.findall(m.group(2)) if k not in rec})
            out.append(rec)
    return out


def load(spec: str) -> list[dict]:
    """Records of a run: ``spec`` is a run folder (its ``curve.json``), a ``curve.json`` or a log file.
    Raises FileNotFoundError when none exists."""
    path = os.path.join(spec, "curve.json") if os.path.isdir(spec) else spec
    if path.endswith(".json"):
        return [json.loads(line) for line in open(path) if line.strip()]
    return from_log(path)


def plot(runs: dict[str, list[dict]], keys: list[str], path: str, title: str = "") -> None:
    """One panel per key (e.g. ``val_psnr``, ``val_colourfulness``), value against step, a line per run."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.8), dpi=80, squeeze=False)
    for ax, key in zip(axes[0], keys):
        for label, recs in runs.items():
            pts = [(r["step"], r[key]) for r in recs if key in r]
            if pts:
                ax.plot(*zip(*pts), marker=".", ms=3, label=label)
        ax.set(xlabel="step", title=key)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def curve_main(args) -> int:
    """The ``colorize curve`` / ``inpaint curve`` verbs: plot ``args.runs`` (label=RUN_DIR|curve.json|log)
    for ``args.keys`` into ``args.plot``; prints the last record of each run. Returns 0."""
    runs = {}
    for spec in args.runs:
        label, _, src = spec.partition("=")
        runs[label] = load(src)
        last = runs[label][-1] if runs[label] else {}
        print(f"[curve] {label}: {len(runs[label])} points, last {json.dumps(last)}", flush=True)
    plot(runs, args.keys.split(","), args.plot, getattr(args, "title", ""))
    return 0
