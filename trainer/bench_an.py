"""AN's cost on this CPU, after Wang et al. 2020, Table 5: Attentive Normalization (n = 16) against a
SA-GAN self-attention block (Zhang et al. 2019), C = 32, batch 1, at 64^2, 128^2, 256^2 and 512^2.

Each (block, size) runs in a fresh subprocess so that its peak memory is its own: peak RSS minus the
RSS after the input was allocated (MiB, ``ru_maxrss``). Time is the median of ``--repeats`` forward
passes in eval mode without autograd (ms), after one warm-up, with ``--threads`` torch threads.
A run whose estimated working set (self-attention's HW x HW float32 matrix, twice: logits and
softmax) is above ``--max-gib`` is not started and marked OOM with that estimate; a run slower than
``--max-seconds`` per pass is marked too slow.

Usage: ``/usr/bin/python3 -m trainer.bench_an [--threads 2] [--repeats 5]``; prints a table and the
SA/AN ratios of time and memory.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

from .normalization import AttentiveNormalization


class SelfAttention(nn.Module):
    """SA-GAN self-attention block: ``x + gamma * h(x) softmax(f(x)^T g(x))``; f, g: C/8 channels, h: C.
    Input/output B x C x H x W; memory O((HW)^2) for the attention map."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.f = nn.Conv2d(channels, channels // 8, 1)
        self.g = nn.Conv2d(channels, channels // 8, 1)
        self.h = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, hh, ww = x.shape
        attn = torch.softmax(torch.bmm(self.f(x).flatten(2).transpose(1, 2), self.g(x).flatten(2)), dim=-1)
        return x + self.gamma * torch.bmm(self.h(x).flatten(2), attn.transpose(1, 2)).view(b, c, hh, ww)


def _rss_mib() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_one(block: str, size: int, channels: int, repeats: int, threads: int, max_seconds: float) -> dict:
    """One measurement in this process: {"ms": median, "peak_mib": ..., "status": "ok"|"too slow"}."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    m = (AttentiveNormalization(channels, n=16) if block == "AN" else SelfAttention(channels)).eval()
    with torch.no_grad():
        if block == "AN":
            m.rho.fill_(1.0)
        else:
            m.gamma.fill_(1.0)
    x = torch.randn(1, channels, size, size)
    base = _rss_mib()
    times = []
    with torch.no_grad():
        for i in range(repeats + 1):
            t0 = time.perf_counter()
            m(x)
            dt = time.perf_counter() - t0
            if i > 0:
                times.append(dt * 1000)
            if dt > max_seconds:
                return {"ms": round(dt * 1000, 1), "peak_mib": round(_rss_mib() - base, 1), "status": "too slow"}
    return {"ms": round(statistics.median(times), 2), "peak_mib": round(_rss_mib() - base, 1), "status": "ok"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m trainer.bench_an", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--sizes", type=int, nargs="*", default=[64, 128, 256, 512])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--max-gib", type=float, default=8.0)
    p.add_argument("--max-seconds", type=float, default=60.0)
    p.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    p.add_argument("--json")
    a = p.parse_args(argv)
    if a.one:
        print(json.dumps(run_one(a.one[0], int(a.one[1]), a.channels, a.repeats, a.threads, a.max_seconds)))
        return 0
    rows = {}
    for size in a.sizes:
        for block in ("AN", "SA"):
            est_gib = 2 * (size * size) ** 2 * 4 / 2 ** 30 if block == "SA" else 0.0
            if est_gib > a.max_gib:
                rows[(block, size)] = {"ms": None, "peak_mib": None, "status": f"OOM (needs ~{est_gib:.0f} GiB)"}
                continue
            out = subprocess.run([sys.executable, "-m", "trainer.bench_an", "--one", block, str(size),
                                  "--channels", str(a.channels), "--threads", str(a.threads),
                                  "--repeats", str(a.repeats), "--max-seconds", str(a.max_seconds)],
                                 capture_output=True, text=True)
            rows[(block, size)] = json.loads(out.stdout) if out.returncode == 0 else {
                "ms": None, "peak_mib": None, "status": f"failed ({out.returncode}): {out.stderr.strip()[-80:]}"}
            print(f"[bench] {block} {size}x{size}: {rows[(block, size)]}", flush=True)
    print(f"\nAN (n=16) vs SA-GAN self-attention, C={a.channels}, batch 1, {a.threads} threads, median of {a.repeats}")
    print(f"{'size':>9} | {'AN ms':>9} {'AN MiB':>8} | {'SA ms':>9} {'SA MiB':>8} | {'SA/AN time':>10} {'SA/AN mem':>9} | status")
    for size in a.sizes:
        an, sa = rows[("AN", size)], rows[("SA", size)]
        ok = an["status"] == "ok" and sa["status"] == "ok"
        rt = f"{sa['ms'] / an['ms']:.1f}x" if ok else "-"
        rm = f"{sa['peak_mib'] / max(an['peak_mib'], 0.1):.1f}x" if ok else "-"
        f = lambda v: "-" if v is None else f"{v}"
        print(f"{size:>4}x{size:<4} | {f(an['ms']):>9} {f(an['peak_mib']):>8} | {f(sa['ms']):>9} {f(sa['peak_mib']):>8} | "
              f"{rt:>10} {rm:>9} | AN {an['status']}, SA {sa['status']}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({f"{b}@{s}": v for (b, s), v in rows.items()}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
