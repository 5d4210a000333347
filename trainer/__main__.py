"""Command line of the trainer: ``/usr/bin/python3 -m trainer TASK VERB [options]``.

Tasks and verbs (``--help`` at each level lists them):
  colorize  train | evaluate | curve | export               PONO-MS grayscale -> colour translator
            train-hints | evaluate-hints | export-hints    its colour-hints path (Zhang et al. 2017)
  inpaint   train | evaluate | probe-an | curve | export   Attentive Normalization inpainter
  upscale   train | evaluate | curve | export               PONO-MS x4 photo upscaler
  generate  train | train-evaluator | evaluate | curve | export   class-conditional Fashion-MNIST GAN (+ its evaluator)
  data      fetch                                          install the Debian photo / Fashion-MNIST packages
  explain   export | fixture                               explain.onnx: PONO mu/sigma, AN layouts as outputs
  checkpoint  compact                                      a resumable copy small enough to commit (<= 25 MB)
  onnx      optimize | int8-prepare | int8-quantize | int8-record   graph rewrites; INT8 variants (npm run int8)

Every ``train`` verb also runs under torchrun (``--batch`` = the global batch; trainer/distributed.py):
  python3 -m torch.distributed.run --standalone --nproc_per_node 2 -m trainer upscale train --photos DIR --out OUT
  (PyTorch 1.13 on Python 3.11: python3 -m trainer.torchrun, the same arguments)

Examples (``npm run train -- …`` is the same command):
  /usr/bin/python3 -m trainer colorize train --out runs/colorize --steps 8000 --threads 1 --photos all,~/my-photos
  /usr/bin/python3 -m trainer inpaint evaluate an=runs/inpaint-an/best.pt --masks mixed
  /usr/bin/python3 -m trainer generate export runs/gen-an/final.pt --out-dir models/fashion-an

The old flat names (train, train-inpaint, train-gan, train-classifier, evaluate, evaluate-gan, export,
data) still work for one release: they print the new form and run it.
"""
from __future__ import annotations

import argparse
import sys

from . import cli
from .colorize import cli as colorize_cli
from .generate import cli as generate_cli
from .inpaint import cli as inpaint_cli
from .upscale import cli as upscale_cli

# old flat command -> (task, verb); kept for one release
ALIASES = {"train": ("colorize", "train"), "evaluate": ("colorize", "evaluate"), "export": ("colorize", "export"),
           "train-inpaint": ("inpaint", "train"), "train-gan": ("generate", "train"),
           "train-classifier": ("generate", "train-evaluator"), "evaluate-gan": ("generate", "evaluate")}


def parser() -> argparse.ArgumentParser:
    """The two-level parser: TASK (subparsers) then VERB (each task's ``cli.register``)."""
    p = argparse.ArgumentParser(prog="python3 -m trainer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    tasks = p.add_subparsers(dest="task", required=True, metavar="TASK")
    for name, mod, help in (("colorize", colorize_cli, "PONO-MS colorizer (translate task)"),
                            ("inpaint", inpaint_cli, "Attentive Normalization inpainter"),
                            ("upscale", upscale_cli, "PONO-MS x4 photo upscaler (upscale task)"),
                            ("generate", generate_cli, "class-conditional Fashion-MNIST GAN and its evaluator"),
                            ("data", None, "training data from Debian packages"),
                            ("checkpoint", None, "committable copies of training checkpoints"),
                            ("onnx", None, "graph rewrites of exported models for serving speed"),
                            ("explain", None, "explain.onnx: a model's PONO moments and AN layouts as extra outputs")):
        tp = tasks.add_parser(name, help=help, description=(mod.__doc__ if mod else help),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
        verbs = tp.add_subparsers(dest="verb", required=True, metavar="VERB")
        if mod is not None:
            mod.register(verbs)
        elif name == "data":
            cli.verb(verbs, "fetch", "trainer.data.photos:fetch_main",
                     "install the photo packages of every collection; print the photo index (train/validation)")
        elif name == "explain":
            x = cli.verb(verbs, "export", "trainer.explain:main",
                         "write models/NAME/explain.onnx (the model's graph + its PONO mu/sigma and AN layouts as outputs) and its manifest entry")
            x.add_argument("model_dirs", nargs="+", help="model folders (models/NAME)")
            fx = cli.verb(verbs, "fixture", "trainer.explain:fixture_main",
                          "PyTorch's maps for a model's parity fixture (forward hooks), for test/explain.test.ts")
            fx.add_argument("model_dir", help="models/NAME (with fixture/ and an explain entry)")
            fx.add_argument("--checkpoint", required=True, help="the checkpoint model.onnx was exported from")
        elif name == "onnx":
            o = cli.verb(verbs, "optimize", "trainer.graph:optimize_main",
                         "rewrite models/NAME/model.onnx in place for onnxruntime's CPU kernels (trainer/graph.py), "
                         "update its manifest, re-derive explain.onnx")
            o.add_argument("model_dir", help="models/NAME")
            o.add_argument("--version", help="the model's new version (a rewritten graph is a new file)")
            ip = cli.verb(verbs, "int8-prepare", "trainer.int8:prepare_main",
                          "INT8 variant, step 1: calibration / test / speed inputs and the calibration graph (npm run int8 runs every step)")
            ip.add_argument("model_dir")
            ip.add_argument("--work", required=True, help="working folder")
            ip.add_argument("--n", type=int, default=16, help="calibration crops (validation photos)")
            ip.add_argument("--side", type=int, default=128, help="crop side of the calibration and test inputs (px, the model's input)")
            ip.add_argument("--speed-side", type=int, default=512, help="crop side of the speed inputs (px, the model's input)")
            iq = cli.verb(verbs, "int8-quantize", "trainer.int8:quantize_main", "INT8 variant, step 3: write models/NAME/model.int8.onnx (QDQ)")
            iq.add_argument("model_dir")
            iq.add_argument("--stats", required=True, help="scripts/int8.ts calibrate output")
            ir = cli.verb(verbs, "int8-record", "trainer.int8:record_main", "INT8 variant, step 5: record it in the manifest (variants.int8)")
            ir.add_argument("model_dir")
            for k in ("--stats", "--quality", "--speed", "--work"):
                ir.add_argument(k, required=True)
            ig = cli.verb(verbs, "int8-figure", "trainer.int8:figure_main", "fp32 | int8 | difference x 10 of test samples of npm run int8 runs")
            ig.add_argument("out")
            ig.add_argument("samples", nargs="+", help="NAME:INDEX (a test sample of out/int8/NAME)")
            ig.add_argument("--work", default="out/int8")
        else:
            c = cli.verb(verbs, "compact", "trainer.checkpoint:compact_main",
                         "resumable copy with EMA in float16 and optimizer moments in bfloat16 (trainer/checkpoint.py)")
            c.add_argument("paths", nargs="+", help="SRC DST [SRC DST ...]")
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), translate an old flat command name, run the verb."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ALIASES:
        new = list(ALIASES[argv[0]])
        print(f"note: `python3 -m trainer {argv[0]}` is now `python3 -m trainer {' '.join(new)}`; "
              "the old name goes in the next release", file=sys.stderr)
        argv = new + argv[1:]
    elif argv == ["data"]:
        print("note: `python3 -m trainer data` is now `python3 -m trainer data fetch`", file=sys.stderr)
        argv = ["data", "fetch"]
    return cli.run(parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
