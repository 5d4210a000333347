"""ONNX export (opset 17, dynamic N/H/W, no training-only ops) and a few-step smoke run of the real
training loop on the real wallpaper photos, with resume."""
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from trainer.export import OPSET, export_onnx
from trainer.colorize.model import Translator

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_export_is_opset_17_with_dynamic_batch_height_width(tmp_path):
    net = Translator(ngf=8, n_blocks=1).eval()
    path = str(tmp_path / "m.onnx")
    export_onnx(net, path)
    m = onnx.load(path)
    assert m.opset_import[0].version == OPSET == 17
    dims = [d.dim_param for d in m.graph.input[0].type.tensor_type.shape.dim]
    assert dims[0] == "batch" and dims[2] == "height" and dims[3] == "width"
    ops = {n.op_type for n in m.graph.node}
    assert "InstanceNormalization" in ops
    assert not ops & {"RandomNormal", "RandomUniform", "Dropout"}


def test_shipped_manifest_matches_its_onnx_file():
    from trainer.data.photos import sha256
    for name, keys in (("colorize-pono-auto", ("command", "steps", "seed", "git_commit", "wall_time_s", "data")),
                       ("colorize-pono", ("command", "steps", "seed", "git_commit", "data", "pipeline"))):
        d = os.path.join(REPO, "models", name)
        man = json.load(open(os.path.join(d, "manifest.json")))
        assert man["name"] == name
        assert sha256(os.path.join(d, man["onnx"]["file"])) == man["onnx"]["sha256"]
        assert man["inputs"][0]["channels"] == 1 and man["outputs"][0]["channels"] == 3
        for key in keys:
            assert key in man["training"], (name, key)


def _train(out, steps, *extra):
    cmd = [sys.executable, "-m", "trainer", "colorize", "train", "--out", str(out), "--steps", str(steps), "--ngf", "8",
           "--n-blocks", "1", "--batch", "4", "--crop", "32", "--threads", "1", "--log-every", "2", "--ckpt-every", "2",
           "--photos", "opencv", "--prior-crops", "32", "--val-crops", "8", *extra]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(not os.path.exists("/usr/share/backgrounds/mate/nature"), reason="wallpaper packages not installed")
def test_smoke_training_progress_checkpoint_and_resume(tmp_path):
    r = _train(tmp_path, 4, "--gan-weight", "0.01")  # the pix2pix PatchGAN path too
    assert r.returncode == 0, r.stderr
    assert "[train] step 4/4" in r.stdout and "img/s" in r.stdout and "ETA" in r.stdout
    ck = torch.load(tmp_path / "checkpoint.pt")
    assert ck["step"] == 4
    assert ck["disc"] is not None
    r2 = _train(tmp_path, 6, "--resume", "--gan-weight", "0.01")
    assert r2.returncode == 0, r2.stderr
    assert "[resume] from step 4" in r2.stdout and "[train] step 6/6" in r2.stdout
    summary = json.load(open(tmp_path / "summary.json"))
    assert summary["steps"] == 6 and np.isfinite(summary["final"]["l1"]) and summary["final"]["d"] > 0
    assert (tmp_path / "best.pt").exists() and summary["best"]["step"] > 0
    # evaluate + export of that run through the same CLI
    from trainer.__main__ import main as cli
    from trainer.data.photos import sha256
    assert cli(["colorize", "evaluate", f"smoke={tmp_path}/best.pt", "--json", str(tmp_path / "m.json")]) == 0
    res = json.load(open(tmp_path / "m.json"))["results"]
    assert set(res) == {"smoke", "gray_copy"} and np.isfinite(res["smoke"]["mean"]["psnr"])
    out = tmp_path / "model"
    assert cli(["colorize", "export", str(tmp_path / "best.pt"), "--out-dir", str(out), "--metrics", str(tmp_path / "m.json"),
                "--version", "0.0.1", "--command", "smoke"]) == 0
    man = json.load(open(out / "manifest.json"))
    assert man["task"] == "translate" and man["training"]["command"] == "smoke"
    assert man["serving"]["default"] is False  # a user's export is not the default unless --default
    assert man["onnx"]["sha256"] == sha256(str(out / "model.onnx")) and (out / "fixture" / "output.f32").exists()


@pytest.mark.skipif(not os.path.exists("/usr/share/backgrounds/mate/nature"), reason="wallpaper packages not installed")
def test_stop_at_checkpoints_early_and_resume_finishes_the_same_schedule(tmp_path):
    r = _train(tmp_path, 6, "--stop-at", "3")
    assert r.returncode == 0, r.stderr
    assert "[stop] --stop-at 3" in r.stdout and "[train] step 4/6" not in r.stdout
    assert torch.load(tmp_path / "checkpoint.pt")["step"] == 3  # written at the stop, off the --ckpt-every grid
    assert not (tmp_path / "final.pt").exists()
    r2 = _train(tmp_path, 6, "--resume")
    assert r2.returncode == 0, r2.stderr
    assert "[resume] from step 3" in r2.stdout and "[train] step 6/6" in r2.stdout
    assert (tmp_path / "final.pt").exists()


def test_stop_step_rule():
    from argparse import Namespace
    from trainer.loop import stop_step
    assert stop_step(Namespace(steps=100, stop_at=0)) == 100
    assert stop_step(Namespace(steps=100, stop_at=40)) == 40
    assert stop_step(Namespace(steps=100, stop_at=400)) == 100
    with pytest.raises(ValueError):
        stop_step(Namespace(steps=100, stop_at=-1))
