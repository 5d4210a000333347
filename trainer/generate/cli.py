"""generate: the class-conditional Fashion-MNIST GAN with AN (``generate`` task; model ``fashion-an``)
and the classifier that evaluates it.

  train            train the GAN (AN; ``--no-an`` for the ablation)
  train-evaluator  train the Fashion-MNIST classifier used as the evaluator (``--norm bn`` or ``an``)
  evaluate         FID / intra-FID / accuracy / IS-style in the evaluator's feature space
  curve            the same, lighter, for every EMA snapshot of runs: the convergence curve (JSON + PNG)
  export           ONNX (z, y -> image) + parity fixture + manifest (+ a sample grid)
"""
from __future__ import annotations

import os

from .. import cli


def register(sub) -> None:
    """Add the generate verbs to ``sub`` (argparse subparsers)."""
    t = cli.verb(sub, "train", "trainer.generate.train:train", "train the class-conditional Fashion-MNIST GAN")
    cli.add_run_folder(t, log_every=100, ckpt_every=250)
    cli.add_runtime(t)
    t.add_argument("--no-an", dest="an", action="store_false", help="the same networks without AN (ablation)")
    t.add_argument("--ch", type=int, default=32)
    t.add_argument("--entities", type=int, default=16, help="AN's n")
    t.add_argument("--steps", type=int, default=3000)
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--n-dis", type=int, default=1, help="D steps per G step")
    t.add_argument("--lr-g", type=float, default=1e-4)
    t.add_argument("--lr-d", type=float, default=4e-4)
    t.add_argument("--lambda-o", type=float, default=1e-4)
    t.add_argument("--ema", type=float, default=0.999)
    t.add_argument("--lr-decay-from", type=int, default=0,
                   help="from this step, decay both learning rates linearly to 0 at --steps (0 = constant)")
    t.add_argument("--aux-weight", type=float, default=0.0,
                   help="auxiliary class loss (AC-GAN head on D, trained on real images): weight a in "
                        "L_D += a CE(C(x), y), L_G += a CE(C(G(z, y)), y); 0 = the projection D alone")
    t.add_argument("--snapshot-every", type=int, default=0, help="keep the EMA G every N steps in <out>/snapshots (0 = off)")

    c = cli.verb(sub, "train-evaluator", "trainer.generate.train_evaluator:train",
                 "train the Fashion-MNIST evaluator (BN or mixture AN)")
    c.add_argument("--out", required=True)
    cli.add_runtime(c)
    c.add_argument("--norm", choices=["bn", "an"], default="bn")
    c.add_argument("--k", type=int, default=5, help="mixture AN's K affine components")
    c.add_argument("--width", type=int, default=16)
    c.add_argument("--epochs", type=int, default=3)
    c.add_argument("--batch", type=int, default=128)
    c.add_argument("--lr", type=float, default=0.1)
    c.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (smoke runs; 0 = all)")
    c.add_argument("--log-every", type=int, default=100)

    e = cli.verb(sub, "evaluate", "trainer.generate.evaluate:main", "FID, intra-FID, accuracy, IS-style score of generators")
    e.add_argument("generators", nargs="*", help="label=path/to/final.pt pairs")
    e.add_argument("--images", action="append", help="label=DIR of service samples <class>_<i>.png "
                   "(scripts/service-outputs.ts generate DIR); repeatable")
    e.add_argument("--evaluator", required=True, help="the classifier's model.pt")
    e.add_argument("--samples", type=int, default=10000)
    e.add_argument("--seed", type=int, default=2024)
    e.add_argument("--json", help="write the metrics here")
    e.add_argument("--an-sampling", choices=("grid", "off"), default="grid",
                   help="AN self-sampling at inference: fixed evenly spaced positions (grid, default) or off (t = 0, the paper's rule)")
    e.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: cores)")

    c = cli.verb(sub, "curve", "trainer.generate.evaluate:curve_main",
                 "FID / accuracy of every EMA snapshot of runs, appended to a committed curve JSON, and its PNG")
    c.add_argument("runs", nargs="+", help="label=RUN_DIR pairs (RUN_DIR/snapshots/ema_NNNNNN.pt)")
    c.add_argument("--evaluator", required=True, help="the classifier's model.pt")
    c.add_argument("--samples", type=int, default=2000)
    c.add_argument("--seed", type=int, default=2024)
    c.add_argument("--json", required=True, help="curve file: read (points kept) and rewritten")
    c.add_argument("--plot", help="write the curve PNG here")
    c.add_argument("--an-sampling", choices=("grid", "off"), default="grid",
                   help="AN self-sampling at inference: fixed evenly spaced positions (grid, default) or off (t = 0, the paper's rule)")
    c.add_argument("--threads", type=int, default=os.cpu_count() or 1)

    x = cli.verb(sub, "export", "trainer.generate.export:main", "export ONNX + fixture + manifest")
    cli.add_export(x, "fashion-an")
    x.add_argument("--metrics", help="`generate evaluate --json` output")
    x.add_argument("--an-sampling", choices=("grid", "off"), default="grid",
                   help="AN self-sampling at inference: fixed evenly spaced positions (grid, default) or off (t = 0, the paper's rule)")
    x.add_argument("--classifier-metrics", help="JSON with the BN / mixture-AN classifier summaries")
    x.add_argument("--grid", help="write a one-row-per-class sample grid PNG here")
