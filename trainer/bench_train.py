"""Training throughput of 1 vs 2 processes (torchrun, gloo, 1 thread each), fp32 and bf16, and the memory of a
streamed photo folder (issue 46's targets). ``npm run bench:train`` runs it; it prints a table and writes JSON.

Scaling (``--mode scale``): ``upscale train`` (the shipped network: nf 32, 4 + 4 blocks; HR crops 128 px) with a
**global** batch of 16 for 1 process and for 2 processes of 8, on a generated folder of photo-sized JPEGs
streamed from disk (decoding in the training processes: ``--workers 0``), ``--steps`` steps; steps/s is
measured between the first and the last progress line (validation is 1 crop), median of the intervals. The
ratio 2 procs / 1 proc is the strong-scaling speed-up at an equal global batch (ideal 2.0 on 2 cores). bf16 runs
a quarter of the steps (a CPU without native bfloat16 arithmetic emulates it, many times slower than fp32).

Memory (``--mode rss``): ``upscale train`` on a generated folder of ``--images`` JPEGs (256-640 px), batch 4,
``--workers 1``, ``--steps`` steps; the RSS of the training process + its DataLoader worker at every
progress line (steps 100, 200, ...). Streamed means flat: no photo stays in memory.

Usage: ``/usr/bin/python3 -m trainer.bench_train [--mode scale|rss|both] [--steps N] [--json FILE]``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

STEP = re.compile(r"\[train\] step (\d+)/\d+ .*? ([\d.]+) img/s .*?rss (\d+) MiB")


def make_folder(path: str, n: int, seed: int = 0, lo: int = 256, hi: int = 640) -> str:
    """``n`` synthetic photo-like JPEGs (smooth gradients + noise + rectangles, sides in [lo, hi]) in ``path``."""
    os.makedirs(path, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        f = os.path.join(path, f"{i // 1000:02d}", f"{i:05d}.jpg")
        if os.path.exists(f):
            continue
        os.makedirs(os.path.dirname(f), exist_ok=True)
        h, w = (int(v) for v in rng.integers(lo, hi + 1, 2))
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        base = np.stack([np.sin(x / rng.uniform(8, 60) + c) * 60 + np.cos(y / rng.uniform(8, 60)) * 60 + 128 for c in range(3)], -1)
        base += rng.normal(0, 6, base.shape)
        for _ in range(4):
            y0, x0 = rng.integers(0, h - 32), rng.integers(0, w - 32)
            base[y0:y0 + rng.integers(16, 96), x0:x0 + rng.integers(16, 96)] = rng.integers(0, 256, 3)
        Image.fromarray(base.clip(0, 255).astype(np.uint8)).save(f, quality=90)
    return path


def run(procs: int, args: list[str], out: str) -> list[tuple[int, float, int]]:
    """Run ``upscale train`` in ``procs`` processes; [(step, img/s, rss MiB)] of rank 0's progress lines."""
    launcher = ([sys.executable, "-m", "trainer.torchrun", "--standalone", "--nproc_per_node", str(procs)] if procs > 1
                else [sys.executable])
    cmd = launcher + ["-m", "trainer", "upscale", "train", "--out", out, *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return [(int(a), float(b), int(c)) for a, b, c in STEP.findall(r.stdout)]


def scale(folder: str, steps: int, every: int) -> dict:
    """Steps/s of 1 and 2 processes, fp32 and bf16 (module docstring)."""
    res = {}
    for precision in ("fp32", "bf16"):
        n, e = (steps, every) if precision == "fp32" else (max(2, steps // 4), max(1, every // 4))  # bf16 is slow on CPUs without it
        common = ["--photos", folder, "--steps", str(n), "--batch", "16", "--crop", "128", "--nf", "32", "--n-mid", "4",
                  "--n-lr", "4", "--scales", "256,384", "--threads", "1", "--log-every", str(e), "--ckpt-every", str(n),
                  "--val-crops", "1", "--val-crop", "64", "--workers", "0"]
        for procs in (1, 2):
            with tempfile.TemporaryDirectory() as out:
                t = time.time()
                lines = run(procs, common + ["--precision", precision], out)
            ips = statistics.median(v for _, v, _ in lines[1:]) if len(lines) > 1 else lines[0][1]
            res[f"{precision}_{procs}"] = {"img_per_s": round(ips, 2), "steps_per_s": round(ips / 16, 4),
                                           "wall_s": round(time.time() - t, 1)}
            print(f"[bench] {precision} {procs} process(es): {ips / 16:.3f} steps/s ({ips:.1f} img/s, global batch 16)", flush=True)
        res[f"{precision}_speedup"] = round(res[f"{precision}_2"]["steps_per_s"] / res[f"{precision}_1"]["steps_per_s"], 2)
    res["bf16_vs_fp32_1"] = round(res["bf16_1"]["steps_per_s"] / res["fp32_1"]["steps_per_s"], 2)
    return res


def rss(folder: str, steps: int) -> dict:
    """RSS at each progress line of a streamed run (module docstring)."""
    with tempfile.TemporaryDirectory() as out:
        lines = run(1, ["--photos", folder, "--steps", str(steps), "--batch", "4", "--crop", "64", "--nf", "8", "--n-mid", "1",
                        "--n-lr", "1", "--scales", "128,256", "--threads", "1", "--log-every", "100",
                        "--ckpt-every", str(steps), "--val-crops", "1", "--val-crop", "64", "--workers", "1"], out)
    for step, _, mib in lines:
        print(f"[bench] streamed step {step}: rss {mib} MiB (training process + 1 worker)", flush=True)
    return {"rss_mib_by_step": {s: m for s, _, m in lines}}


def main(argv: list[str] | None = None) -> int:
    """Parse the options, build the folders (cached under ``--data``), run, print, write ``--json``."""
    p = argparse.ArgumentParser(prog="python3 -m trainer.bench_train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=("scale", "rss", "both"), default="both")
    p.add_argument("--steps", type=int, default=0, help="steps per run (default: scale 40, rss 1000)")
    p.add_argument("--images", type=int, default=5000, help="images in the streamed folder (rss)")
    p.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "normgen-bench-photos"))
    p.add_argument("--json")
    a = p.parse_args(argv)
    out = {"cpu_count": os.cpu_count()}
    if a.mode in ("scale", "both"):
        out["scale"] = scale(make_folder(os.path.join(a.data, "scale"), 200, seed=1), a.steps or 40, 10)
        print(f"[bench] 2 / 1 processes: fp32 {out['scale']['fp32_speedup']}x, bf16 {out['scale']['bf16_speedup']}x; "
              f"bf16 / fp32 (1 process) {out['scale']['bf16_vs_fp32_1']}x", flush=True)
    if a.mode in ("rss", "both"):
        t = time.time()
        folder = make_folder(os.path.join(a.data, f"rss-{a.images}"), a.images, seed=2)
        print(f"[bench] {a.images} images in {folder} ({time.time() - t:.0f} s)", flush=True)
        out["rss"] = rss(folder, a.steps or 1000)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
