"""The x4 upscaler (issue 33): the network's shapes, PONO-MS wiring and reach; the degradation pipeline; the
super-resolution metric; the tiling property the service relies on; export; a few-step smoke run of the real
training loop with resume; and explain.onnx derivation on its exported graph."""
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from trainer.explain import find_maps
from trainer.export import export_onnx
from trainer.metrics import sr_scores, y_channel
from trainer.upscale import degrade
from trainer.upscale.export import reach
from trainer.upscale.model import Upscaler

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _random_net(pono_ms=True, seed=0):
    torch.manual_seed(seed)
    net = Upscaler(nf=8, n_mid=1, n_lr=1, pono_ms=pono_ms).eval()
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.1)
    return net


def test_output_is_4x_and_starts_as_bicubic():
    net = Upscaler(nf=8, n_mid=1, n_lr=1).eval()
    x = torch.rand(2, 3, 12, 20) * 2 - 1
    with torch.no_grad():
        y = net(x)
    assert y.shape == (2, 3, 48, 80)
    bic = torch.nn.functional.interpolate(x, scale_factor=4.0, mode="bicubic", align_corners=False)
    assert torch.equal(y, bic)  # the zero-initialised tail: training starts from bicubic
    with pytest.raises(ValueError):
        net(torch.zeros(1, 3, 10, 12))


def test_pono_ms_changes_the_output_and_moments_are_channel_mean_and_std():
    a, b = _random_net(True), _random_net(False)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert not torch.allclose(a(x), b(x))
        (mu1, s1), (mu2, s2) = a.moments(x)
        f = a.down1(a.stem(x))
    assert mu1.shape == (1, 1, 8, 8) and mu2.shape == (1, 1, 4, 4)
    assert torch.allclose(mu1, f.mean(1, keepdim=True), atol=1e-6)
    assert torch.allclose(s1, torch.sqrt(f.var(1, unbiased=False, keepdim=True) + 1e-5), atol=1e-6)
    assert b.moments(x) == []


def test_tiles_overlapping_by_the_reach_reproduce_the_whole_image():
    net = _random_net()
    r = reach(net, side=96, seeds=1)
    assert 8 < r < 96
    ov = -(-r // 4) * 4
    x = torch.rand(1, 3, 64, 96) * 2 - 1
    with torch.no_grad():
        whole = net(x)
        # the right half as a tile extended left by the overlap (and clamped at the image border)
        x0 = 48 - ov
        tile = net(x[..., x0:])
    assert torch.allclose(tile[..., (48 - x0) * 4:], whole[..., 48 * 4:], atol=1e-5)


def test_degradations_have_the_right_sizes_and_are_seeded():
    hr = (np.random.default_rng(0).random((64, 96, 3)) * 255).astype(np.uint8)
    assert degrade.bicubic_down(hr).shape == (16, 24, 3)
    a = degrade.real_world(hr, np.random.default_rng(5))
    b = degrade.real_world(hr, np.random.default_rng(5))
    assert a.shape == (16, 24, 3) and np.array_equal(a, b)
    assert not np.array_equal(a, degrade.real_world(hr, np.random.default_rng(6)))
    d = degrade.eval_degraded(hr, seed=1)
    assert d.shape == (16, 24, 3) and np.array_equal(d, degrade.eval_degraded(hr, seed=1))
    assert not np.array_equal(d, degrade.bicubic_down(hr))
    with pytest.raises(ValueError):
        degrade.bicubic_down(hr[:63])


def test_sr_scores_use_y_and_crop_the_border():
    rng = np.random.default_rng(0)
    a = (rng.random((20, 20, 3)) * 255).astype(np.uint8)
    b = a.copy()
    b[:2] = 255 - b[:2]  # differences only in the 2 top rows: cropped with border 4
    assert sr_scores(b, a, 4)[0] == float("inf")
    assert sr_scores(b, a, 0)[0] < 30
    assert abs(y_channel(np.full((1, 1, 3), 255, np.uint8))[0, 0] - 235.0) < 1e-9


def test_export_graph_and_its_explain_maps(tmp_path):
    net = _random_net()
    path = str(tmp_path / "m.onnx")
    export_onnx(net, path, (torch.zeros(1, 3, 32, 32),), ("image",), ("image_out",),
                {"image": {0: "batch", 2: "height", 3: "width"}, "image_out": {0: "batch", 2: "h4", 3: "w4"}})
    maps = find_maps(onnx.load(path).graph)
    assert [m["output"] for m in maps] == ["pono1_mu", "pono1_sigma", "pono1_x", "pono2_mu", "pono2_sigma", "pono2_x"]
    assert [m["layer"] for m in maps if m["kind"] == "pono_mu"] == ["down1", "down2"]
    assert find_maps(onnx.load(_export_plain(tmp_path)).graph) == []


def _export_plain(tmp_path):
    path = str(tmp_path / "plain.onnx")
    export_onnx(_random_net(False), path, (torch.zeros(1, 3, 32, 32),), ("image",), ("image_out",),
                {"image": {0: "batch", 2: "height", 3: "width"}, "image_out": {0: "batch", 2: "h4", 3: "w4"}})
    return path


def _train(out, steps, *extra):
    cmd = [sys.executable, "-m", "trainer", "upscale", "train", "--out", str(out), "--steps", str(steps), "--nf", "8",
           "--n-mid", "1", "--n-lr", "1", "--batch", "2", "--crop", "64", "--scales", "160", "--threads", "1",
           "--log-every", "2", "--ckpt-every", "2", "--photos", "opencv", "--val-crops", "2", "--val-crop", "64", *extra]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(not os.path.exists("/usr/share/doc/opencv-doc"), reason="opencv-doc photos not installed")
def test_smoke_training_checkpoint_resume_and_export(tmp_path):
    r = _train(tmp_path, 2)
    assert r.returncode == 0, r.stderr
    assert "[train] step 2/2" in r.stdout and "vs bicubic" in r.stdout and "ETA" in r.stdout
    assert torch.load(tmp_path / "checkpoint.pt")["step"] == 2
    r2 = _train(tmp_path, 4, "--resume")
    assert r2.returncode == 0, r2.stderr
    assert "[resume] from step 2" in r2.stdout and "[train] step 4/4" in r2.stdout
    curve = [json.loads(line) for line in open(tmp_path / "curve.json")]
    assert [c["step"] for c in curve] == [2, 4] and all("val_clean_gain" in c for c in curve)
    out = tmp_path / "model"
    r3 = subprocess.run([sys.executable, "-m", "trainer", "upscale", "export", str(tmp_path / "best.pt"), "--out-dir", str(out)],
                        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r3.returncode == 0, r3.stderr
    man = json.load(open(out / "manifest.json"))
    assert man["task"] == "upscale" and man["serving"]["scale"] == 4
    assert man["serving"]["tile_overlap"] % 4 == 0 and man["serving"]["tile_overlap"] >= man["architecture"]["reach_px"]
    assert json.load(open(out / "fixture" / "fixture.json"))["output"]["dims"] == [2, 3, 128, 160]


@pytest.mark.skipif(not os.path.exists("/usr/share/doc/opencv-doc"), reason="opencv-doc photos not installed")
def test_whole_photo_validation_and_selection_by_it(tmp_path):
    bad = _train(tmp_path / "bad", 2, "--select", "photos")
    assert bad.returncode != 0 and "--select photos needs --val-photos" in bad.stderr
    r = _train(tmp_path, 4, "--val-photos", "2", "--val-photo-side", "128", "--select", "photos")
    assert r.returncode == 0, r.stderr
    assert "photos clean" in r.stdout and "vs Lanczos" in r.stdout
    curve = [json.loads(line) for line in open(tmp_path / "curve.json")]
    for c in curve:
        assert c["val_photo_gain"] == pytest.approx((c["val_photo_clean_gain"] + c["val_photo_degraded_gain"]) / 2, abs=1e-3)
    best = torch.load(tmp_path / "best.pt")["best"]
    # best.pt is the record with the highest whole-photo gain, whatever the crops say
    top = max(curve, key=lambda c: c["val_photo_gain"])
    assert best["step"] == top["step"] and best["val_photo_gain"] == top["val_photo_gain"]


def test_table3_rows_ms_without_pono_and_pono_dms_from_a_pono_ms_checkpoint():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    pono_ms = _random_net(True)
    # "MS without PONO": the same moments re-injected, the features not normalized -> another function
    ms = Upscaler(nf=8, n_mid=1, n_lr=1, shortcut="ms").eval()
    ms.load_state_dict(pono_ms.state_dict())
    with torch.no_grad():
        assert not torch.allclose(ms(x), pono_ms(x))
        # the first level's moments are the same (the second's differ: its input was normalized or not)
        assert all(torch.equal(a, b) for a, b in zip(ms.moments(x)[0], pono_ms.moments(x)[0]))
    # PONO-DMS loads a PONO-MS checkpoint with only its DMS weights missing, and starts as the same function
    for multi in (True, False):
        dms = Upscaler(nf=8, n_mid=1, n_lr=1, shortcut="pono_dms", dms_multi=multi).eval()
        missing, unexpected = dms.load_state_dict(pono_ms.state_dict(), strict=False)
        assert not unexpected and missing and all(k.startswith(("dms1.", "dms2.")) for k in missing)
        with torch.no_grad():
            assert torch.equal(dms(x), pono_ms(x))
            (b1, g1), (b2, g2) = dms.dms_coefficients(x)
        assert b1.shape == ((1, 16, 8, 8) if multi else (1, 1, 8, 8)) and g2.shape == ((1, 32, 4, 4) if multi else (1, 1, 4, 4))
    with pytest.raises(ValueError):
        Upscaler(nf=8, shortcut="dms")


@pytest.mark.parametrize("multi", [True, False])
def test_pono_dms_export_and_its_explain_maps(tmp_path, multi):
    from trainer.explain import derive
    torch.manual_seed(3)
    net = Upscaler(nf=8, n_mid=1, n_lr=1, shortcut="pono_dms", dms_multi=multi).eval()
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.1)
    path = str(tmp_path / "m.onnx")
    export_onnx(net, path, (torch.zeros(1, 3, 32, 32),), ("image",), ("image_out",),
                {"image": {0: "batch", 2: "height", 3: "width"}, "image_out": {0: "batch", 2: "h4", 3: "w4"}})
    maps = [m for m in find_maps(onnx.load(path).graph) if m["kind"].startswith("pono_dms")]
    # graph order: dms2 (before up1, 4w channels) first, then dms1 (before up2, 2w channels)
    assert [m["output"] for m in maps] == ["dms2_beta", "dms2_gamma", "dms1_beta", "dms1_gamma"]
    assert [m["channels"] for m in maps] == ([32, 32, 16, 16] if multi else [1, 1, 1, 1])
    assert all(("reduce" in m) == multi for m in maps)
    out = derive(path, str(tmp_path / "explain.onnx"))
    names = [o.name for o in onnx.load(str(tmp_path / "explain.onnx")).graph.output]
    assert names[0] == "image_out" and {m["output"] for m in out} <= set(names)


def test_dms_fixture_is_pytorch():
    """The committed PONO-DMS parity fixture (test/fixtures/pono-dms/, run by onnxruntime-node in
    test/parity.test.ts) is this network's PyTorch output."""
    from trainer.tests.upscale.dms_fixture import DIR, example, network
    fx = json.load(open(os.path.join(DIR, "fixture.json")))
    x = np.fromfile(os.path.join(DIR, fx["input"]["file"]), dtype="<f4").reshape(fx["input"]["dims"])
    assert np.array_equal(x, example().numpy())
    with torch.no_grad():
        y = network()(torch.from_numpy(x)).numpy()
    want = np.fromfile(os.path.join(DIR, fx["output"]["file"]), dtype="<f4").reshape(fx["output"]["dims"])
    assert np.abs(y - want).max() < 1e-5
    maps = [m["output"] for m in find_maps(onnx.load(os.path.join(DIR, fx["model"])).graph) if m["kind"].startswith("pono_dms")]
    assert maps == ["dms2_beta", "dms2_gamma", "dms1_beta", "dms1_gamma"]
