"""Training that scales out (trainer/distributed.py, trainer/data/stream.py, trainer/torchrun.py): 2 gloo processes
x batch B/2 reach the weights of 1 process x batch B; a 2-process checkpoint resumes in 1 process; every task trains
under torchrun; streamed folders skip and count unreadable files; the Kubernetes job's command lines parse.

Tolerance of the parity test: 1e-6 absolute on every weight after 4 Adam steps. DDP averages the two processes'
gradients (each the mean over B/2 samples) where one process takes the mean over B: the same sum in another order,
so float32 rounding (~1e-7 relative) is the only difference (measured: 8e-9). Networks whose conv biases sit right
before an instance normalization (the colorizer) are left out of the weight comparison: those biases have a true
gradient of zero, and Adam divides that rounding noise by its own magnitude (a step of ~lr either way).
"""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from trainer.data import photos, stream

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TORCHRUN = [sys.executable, "-m", "trainer.torchrun", "--standalone", "--nproc_per_node", "2"]


def _run(cmd, timeout=600):
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(18):
        h, w = (int(v) for v in rng.integers(200, 360, 2))
        y, x = np.mgrid[0:h, 0:w]
        img = np.stack([(x * (i + 1) // 3) % 256, (y * 2 + 10 * i) % 256, rng.integers(0, 256, (h, w))], -1).astype(np.uint8)
        sub = d / ("a" if i % 2 else "b")
        sub.mkdir(exist_ok=True)
        Image.fromarray(img).save(sub / f"{i:03d}.{'jpg' if i % 3 else 'png'}")
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    (d / "tiny.png").write_bytes(b"")
    return d


UPSCALE = ["upscale", "train", "--steps", "4", "--batch", "4", "--crop", "64", "--val-crop", "64", "--val-crops", "2",
           "--threads", "1", "--log-every", "2", "--ckpt-every", "2", "--nf", "8", "--n-mid", "1", "--n-lr", "1",
           "--scales", "128,256"]


def _weights(path, key="model"):
    return {k: v.float() for k, v in torch.load(path, map_location="cpu")[key].items()}


def _max_diff(a, b):
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


def test_two_processes_match_one_and_resume_in_one(folder, tmp_path):
    one, two, mixed = tmp_path / "one", tmp_path / "two", tmp_path / "mixed"
    _run([sys.executable, "-m", "trainer", *UPSCALE, "--photos", str(folder), "--out", str(one), "--workers", "1"])
    r = _run(TORCHRUN + ["-m", "trainer", *UPSCALE, "--photos", str(folder), "--out", str(two)])
    assert "2 process(es) on cpu (gloo), global batch 4 (2 per process)" in r.stdout
    assert _max_diff(_weights(one / "checkpoint.pt"), _weights(two / "checkpoint.pt")) < 1e-6
    assert _max_diff(_weights(one / "checkpoint.pt", "ema"), _weights(two / "checkpoint.pt", "ema")) < 1e-6
    # a wrong run differs by far more than the tolerance (the test can fail): another seed
    other = tmp_path / "other"
    _run([sys.executable, "-m", "trainer", *UPSCALE, "--photos", str(folder), "--out", str(other), "--workers", "1", "--seed", "1"])
    assert _max_diff(_weights(one / "checkpoint.pt"), _weights(other / "checkpoint.pt")) > 1e-4
    # 2 processes to step 2, then 1 process (2 workers) to step 4 = 1 process all along
    _run(TORCHRUN + ["-m", "trainer", *UPSCALE, "--photos", str(folder), "--out", str(mixed), "--stop-at", "2"])
    r = _run([sys.executable, "-m", "trainer", *UPSCALE, "--photos", str(folder), "--out", str(mixed), "--resume", "--workers", "2"])
    assert "[resume] from step 2 (written by 2 process(es))" in r.stdout
    ck = torch.load(mixed / "checkpoint.pt", map_location="cpu")
    assert ck["step"] == 4 and ck["args"]["world_size"] == 1
    assert _max_diff(_weights(one / "checkpoint.pt"), _weights(mixed / "checkpoint.pt")) < 1e-6
    summary = __import__("json").load(open(one / "summary.json"))
    assert summary["skipped_files"] >= 1 and summary["global_batch"] == 4 and summary["precision"] == "fp32"


def test_the_documented_command_shape(folder, tmp_path):
    """The issue's command (default network and crops) with our launcher, 2 processes, 6 steps."""
    out = tmp_path / "out"
    _run(TORCHRUN + ["-m", "trainer", "upscale", "train", "--photos", str(folder), "--steps", "6", "--batch", "4",
                     "--out", str(out), "--val-crops", "4", "--threads", "1"])
    assert torch.load(out / "checkpoint.pt", map_location="cpu")["step"] == 6


@pytest.mark.parametrize("task", ["colorize", "hints", "inpaint", "generate"])
def test_every_task_trains_under_torchrun(task, folder, tmp_path):
    out = tmp_path / task
    common = ["--steps", "2", "--threads", "1", "--log-every", "1", "--ckpt-every", "1", "--out", str(out)]
    if task == "colorize":
        args = ["colorize", "train", "--photos", str(folder), "--batch", "4", "--crop", "32", "--val-crop", "32",
                "--val-crops", "2", "--ngf", "8", "--n-blocks", "1", "--prior-crops", "8", "--loss", "classify", "--gan-weight", "0.1"]
    elif task == "hints":
        body = tmp_path / "body"
        _run([sys.executable, "-m", "trainer", "colorize", "train", "--photos", str(folder), "--batch", "2", "--crop", "32",
              "--val-crop", "32", "--val-crops", "2", "--ngf", "8", "--n-blocks", "1", "--prior-crops", "8", "--loss", "classify",
              "--steps", "1", "--threads", "1", "--out", str(body)])
        args = ["colorize", "train-hints", "--body", str(body / "best.pt"), "--photos", str(folder), "--batch", "4",
                "--crop", "32", "--val-crop", "32", "--val-crops", "2", "--hint-width", "4"]
    elif task == "inpaint":
        args = ["inpaint", "train", "--photos", str(folder), "--batch", "4", "--crop", "64", "--width", "4", "--entities", "4",
                "--val-crops", "2", "--scales", "96,128", "--arch", "fill-refine", "--adv-weight", "0.1", "--critic", "sn-luma"]
    else:
        args = ["generate", "train", "--batch", "8", "--ch", "8", "--entities", "4", "--aux-weight", "0.5"]
    r = _run(TORCHRUN + ["-m", "trainer", *args, *common])
    assert "2 process(es) on cpu (gloo)" in r.stdout
    assert r.stdout.count("[train] step 2/2") == 1  # rank 0 logs, rank 1 does not
    assert torch.load(out / "checkpoint.pt", map_location="cpu")["step"] == 2


def test_fp16_needs_cuda_and_bf16_runs(folder, tmp_path):
    r = subprocess.run([sys.executable, "-m", "trainer", *UPSCALE, "--photos", str(folder), "--out", str(tmp_path / "a"),
                        "--precision", "fp16"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "needs --device cuda" in r.stderr
    _run([sys.executable, "-m", "trainer", *UPSCALE, "--photos", str(folder), "--out", str(tmp_path / "b"), "--precision", "bf16",
          "--steps", "2"])
    assert torch.load(tmp_path / "b" / "checkpoint.pt", map_location="cpu")["args"]["precision"] == "bf16"


def test_stream_draws_by_index_and_counts_unreadable_files(folder, tmp_path):
    paths = stream.list_images(str(folder))
    assert len(paths) == 20 and any(p.endswith("broken.jpg") for p in paths)
    a, b = stream.FileCrops(paths, 48, (96, 128), seed=3), stream.FileCrops(paths, 48, (96, 128), seed=3)
    for k in (0, 5, 1234567):
        assert torch.equal(a.sample(k)[0], b.sample(k)[0])
    assert not torch.equal(a.sample(0)[0], a.sample(1)[0])
    bad = set()
    for k in range(200):
        crop, slots = a.sample(k)
        assert crop.shape == (3, 48, 48) and crop.dtype == torch.uint8
        bad |= {paths[i] for i in slots.tolist() if i >= 0}
    assert {os.path.basename(p) for p in bad} == {"broken.jpg", "tiny.png"}
    lst = tmp_path / "list.txt"
    lst.write_text("# my photos\n" + "\n".join(os.path.relpath(p, tmp_path) for p in paths[:5]) + "\n\n")
    assert stream.list_images(str(lst)) == [os.path.normpath(os.path.join(tmp_path, os.path.relpath(p, tmp_path))) for p in paths[:5]]
    assert photos.parse_collections(str(lst)) == ("dir:" + str(lst),)
    with pytest.raises(FileNotFoundError):
        stream.list_images(str(tmp_path / "nope"))
    # the in-memory pyramid draws the same way: a function of (seed, k)
    pc = photos.PhotoCrops([photos.PhotoFile("dir-x", "dir:" + str(folder), p) for p in paths[:4]], crop=48, scales=(96,), seed=1)
    crop, slots = pc.sample(7)
    assert torch.equal(crop, pc.sample(7)[0]) and crop.shape == (3, 48, 48) and (slots == -1).all()
    assert not torch.equal(crop, pc.sample(8)[0])
    assert {os.path.basename(p) for p in pc.skipped} == {"broken.jpg", "tiny.png"} & {os.path.basename(p) for p in paths[:4]} != set()


def test_torchrun_launcher_fixes_the_python311_parse():
    from torch.distributed.elastic.multiprocessing import api

    from trainer import torchrun
    torchrun.patch()
    assert api.Std.from_str("0") == api.Std.NONE and api.Std.from_str("3") == api.Std.ALL
    assert api.Std.from_str("0:1,1:2") == {0: api.Std.OUT, 1: api.Std.ERR}
    with pytest.raises(ValueError):
        api.Std.from_str("7")


def test_kubernetes_job_command_lines_parse():
    from trainer.__main__ import parser
    docs = [d for f in ("pytorchjob.yaml", "job.yaml") for d in yaml.safe_load_all(open(os.path.join(REPO, "infra", "training", f)))]
    lines = []
    for d in docs:
        if d["kind"] == "PyTorchJob":
            lines += [r["template"]["spec"]["containers"][0]["args"] for r in d["spec"]["pytorchReplicaSpecs"].values()]
        elif d["kind"] == "Job":
            lines.append(d["spec"]["template"]["spec"]["containers"][0]["args"])
    assert len(lines) == 3
    for args in lines:
        a = parser().parse_args(args[args.index("-m") + 2:])  # what torchrun hands to `python -m trainer`
        assert a.device == "cuda" and a.batch % 8 == 0 and a.resume and a.workers > 0
