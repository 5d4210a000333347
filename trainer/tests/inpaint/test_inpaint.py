"""The two-stage inpainter (AN and IN variants) and the random masks."""
import os

import numpy as np
import onnx
import pytest
import torch

from trainer.inpaint.data import random_mask
from trainer.inpaint.model import Inpainter


def test_masks_cover_10_to_50_percent_and_are_seeded():
    covers = []
    for seed in range(20):
        m = random_mask(64, 96, np.random.default_rng(seed))
        assert m.shape == (64, 96) and set(np.unique(m)) <= {0, 1}
        covers.append(m.mean())
    assert min(covers) >= 0.1 and max(covers) <= 0.5
    assert np.array_equal(random_mask(64, 64, np.random.default_rng(7)), random_mask(64, 64, np.random.default_rng(7)))


@pytest.mark.parametrize("norm", ["an", "in"])
def test_known_pixels_are_exact_and_shapes_match(norm):
    torch.manual_seed(0)
    net = Inpainter(width=8, norm=norm, n=4).eval()
    x = torch.rand(2, 3, 32, 40) * 2 - 1
    m = torch.from_numpy(np.stack([random_mask(32, 40, np.random.default_rng(s)) for s in (1, 2)])).float()[:, None]
    coarse, out = net(x, m)
    assert coarse.shape == out.shape == (2, 3, 32, 40)
    keep = (m == 0).expand_as(x)
    assert torch.equal(out[keep], x[keep])
    assert (out[~keep] != x[~keep]).any()


def test_an_variant_has_an_and_exports_without_random_ops(tmp_path):
    net = Inpainter(width=8, norm="an", n=4).eval()
    assert len(net.an_layers()) == 1 and not Inpainter(width=8, norm="in").an_layers()
    path = str(tmp_path / "inpaint.onnx")
    torch.onnx.export(net, (torch.zeros(1, 3, 32, 32), torch.zeros(1, 1, 32, 32)), path, opset_version=17,
                      input_names=["image", "mask"], output_names=["coarse", "image_out"],
                      dynamic_axes={"image": {0: "b", 2: "h", 3: "w"}, "mask": {0: "b", 2: "h", 3: "w"}})
    ops = {n.op_type for n in onnx.load(path).graph.node}
    assert not {op for op in ops if "Random" in op or op in ("Multinomial", "Bernoulli")}


def test_size_multiple_enforced():
    with pytest.raises(ValueError):
        Inpainter(width=8)(torch.zeros(1, 3, 30, 32), torch.zeros(1, 1, 30, 32))


def test_smoke_training_with_resume_and_init(tmp_path):
    import json
    import subprocess
    import sys
    if not os.path.exists("/usr/share/backgrounds/mate/nature"):
        pytest.skip("photo packages not installed")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

    def run(steps, *extra):
        cmd = [sys.executable, "-m", "trainer", "inpaint", "train", "--out", str(tmp_path), "--steps", str(steps), "--width", "8",
               "--entities", "4", "--batch", "4", "--crop", "32", "--val-crops", "4", "--threads", "1", "--photos", "opencv",
               "--log-every", "2", "--ckpt-every", "2", *extra]
        return subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=300)

    r = run(4)
    assert r.returncode == 0, r.stderr
    assert "[train] step 4/4" in r.stdout and "ortho" in r.stdout and "ETA" in r.stdout
    r2 = run(6, "--resume")
    assert r2.returncode == 0, r2.stderr
    assert "[resume] from step 4" in r2.stdout
    s = json.load(open(tmp_path / "summary.json"))
    assert s["steps"] == 6 and s["best"]["step"] > 0 and (tmp_path / "best.pt").exists()
    # evaluate + export of that run through the same CLI
    from trainer.__main__ import main as cli
    assert cli(["inpaint", "evaluate", f"smoke={tmp_path}/best.pt", "--working-side", "96",
                "--json", str(tmp_path / "m.json")]) == 0
    res = json.load(open(tmp_path / "m.json"))["results"]
    assert set(res) == {"telea", "navier_stokes", "smoke"} and np.isfinite(res["smoke"]["mean"]["psnr"])
    assert cli(["inpaint", "export", str(tmp_path / "best.pt"), "--out-dir", str(tmp_path / "model"),
                "--version", "0.0.1", "--working-max-side", "96", "--metrics", str(tmp_path / "m.json"), "--command", "smoke"]) == 0
    man = json.load(open(tmp_path / "model" / "manifest.json"))
    assert man["task"] == "inpaint" and [i["name"] for i in man["inputs"]] == ["image", "mask"]

    # --init: fine-tune at a larger crop from those weights (lr 0: the weights must come through unchanged).
    ft = tmp_path / "ft"
    r3 = run(2, "--init", str(tmp_path / "checkpoint.pt"), "--crop", "48", "--scales", "48,64", "--lr", "0", "--out", str(ft))
    assert r3.returncode == 0, r3.stderr
    assert "[init] weights from" in r3.stdout and "crop 32" in r3.stdout and "[train] step 2/2" in r3.stdout
    assert "pyramid short sides (48, 64) px" in r3.stdout
    src, dst = torch.load(tmp_path / "checkpoint.pt")["model"], torch.load(ft / "checkpoint.pt")["model"]
    assert src.keys() == dst.keys() and all(torch.equal(src[k], dst[k]) for k in src)
    r4 = run(2, "--init", str(tmp_path / "checkpoint.pt"), "--norm", "in", "--out", str(tmp_path / "bad"))
    assert r4.returncode != 0 and "architecture differs" in r4.stderr

    # the two-stage architecture of inpaint-an 0.x still trains (its manifest's commands stay reproducible)
    r6 = run(2, "--arch", "two-stage", "--out", str(tmp_path / "two"))
    assert r6.returncode == 0, r6.stderr
    assert "arch two-stage" in r6.stdout and "coarse stage at init" in r6.stdout
    assert "push-pull fill" in r.stdout

    # lambda_adv: the PatchGAN term is on (non-zero adv loss) and its discriminator is checkpointed.
    r5 = run(2, "--adv-weight", "1e-3", "--out", str(tmp_path / "adv"))
    assert r5.returncode == 0, r5.stderr
    assert "adv 0.00000" not in r5.stdout and " adv " in r5.stdout
    ck = torch.load(tmp_path / "adv" / "checkpoint.pt")
    assert ck["disc"] is not None and ck["args"]["adv_weight"] == 1e-3


def test_flip_averaged_is_mirror_equivariant_and_keeps_known_pixels():
    torch.manual_seed(0)
    net = Inpainter(width=8, n=4).eval()
    x = torch.rand(1, 3, 32, 40) * 2 - 1
    m = (torch.rand(1, 1, 32, 40) > 0.7).float()
    with torch.no_grad():
        out = net.flip_averaged(x, m)
        mirrored = net.flip_averaged(x.flip(-1), m.flip(-1))
        single = net(x, m)[1]
    assert torch.allclose(mirrored.flip(-1), out, atol=1e-6)
    keep = (m == 0).expand_as(x)
    assert torch.equal(out[keep], x[keep])
    assert not torch.allclose(out, single, atol=1e-4)  # the second pass changes the hole


def test_parse_scales():
    from trainer.data import photos
    from trainer.inpaint.train import parse_scales
    assert parse_scales(None) == photos.SCALES and parse_scales("128,144,160") == (128, 144, 160)
    for bad in ("128,-1", "0", "big"):
        with pytest.raises(ValueError):
            parse_scales(bad)


def test_committed_eval_masks_and_telea_baseline():
    from trainer.data import test_photos
    from trainer.inpaint.evaluate import load_mask, telea
    for name in test_photos.NAMES:
        img, m = test_photos.load(name), load_mask(name)
        assert m.shape == img.shape[:2] and 0.1 <= m.mean() <= 0.5
    img, m = test_photos.load("chelsea"), load_mask("chelsea")
    out = telea(img, m)
    assert out.shape == img.shape and np.array_equal(out[m == 0], img[m == 0]) and not np.array_equal(out, img)


def test_validation_cases_are_seeded_and_disjoint_from_test():
    """The working-size sweep runs on validation photos with seeded masks, never on the test photos."""
    from trainer.data import test_photos
    from trainer.inpaint.evaluate import cases
    a, b = cases("val"), cases("val")
    assert len(a) >= 3 and {n for n, _, _ in a}.isdisjoint(test_photos.NAMES)
    for (na, ia, ma), (nb, ib, mb) in zip(a, b):
        assert na == nb and np.array_equal(ma, mb) and ia.shape[:2] == ma.shape
        assert ia.shape[0] % 4 == 0 and ia.shape[1] % 4 == 0 and 0.1 <= ma.mean() <= 0.5
    assert [n for n, _, _ in cases("test")] == list(test_photos.NAMES)
    with pytest.raises(ValueError):
        cases("train")


def test_dump_and_outputs_score_files_made_elsewhere(tmp_path):
    """--dump writes each test case; --outputs scores <photo>.out.png files: Telea's outputs written there
    score exactly as Telea; an image that is not a dumped input, or a missing result, is an error."""
    import json
    from PIL import Image
    from trainer.__main__ import main as cli
    from trainer.inpaint.evaluate import telea, outputs_fn
    assert cli(["inpaint", "evaluate", "--dump", str(tmp_path)]) == 0
    names = sorted(f[:-9] for f in os.listdir(tmp_path) if f.endswith(".mask.png"))
    from trainer.data import test_photos
    assert names == sorted(test_photos.NAMES)
    for n in names:
        img = np.asarray(Image.open(tmp_path / f"{n}.png").convert("RGB"))
        mask = (np.asarray(Image.open(tmp_path / f"{n}.mask.png")) > 127).astype(np.uint8)
        Image.fromarray(telea(img, mask)).save(tmp_path / f"{n}.out.png")
    assert cli(["inpaint", "evaluate", "--outputs", f"files={tmp_path}", "--json", str(tmp_path / "m.json")]) == 0
    r = json.load(open(tmp_path / "m.json"))["results"]
    assert r["files"]["mean"] == r["telea"]["mean"]
    fn = outputs_fn(str(tmp_path))
    with pytest.raises(ValueError):
        fn(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8))
    os.remove(tmp_path / f"{names[0]}.out.png")
    with pytest.raises(FileNotFoundError):
        fn(np.asarray(Image.open(tmp_path / f"{names[0]}.png").convert("RGB")), None)


def test_lsgan_step_updates_the_discriminator_and_returns_the_generator_term():
    """The shared LSGAN round (train_translator and train_inpainter): D takes one step on its loss,
    loss_d / loss_g are the least-squares values of D before / after that step, and loss_g reaches the
    generator through ``fake``."""
    from trainer.loop import lsgan_step
    from trainer.patchgan import PatchGAN
    torch.manual_seed(0)
    disc = PatchGAN(in_channels=4, ndf=8)
    opt_d = torch.optim.SGD(disc.parameters(), lr=0.1)
    real = torch.rand(2, 4, 32, 32) * 2 - 1
    gen = torch.nn.Parameter(torch.rand(2, 4, 32, 32) * 2 - 1)
    with torch.no_grad():
        before_real, before_fake = disc(real), disc(gen)
    want_d = 0.5 * (((before_real - 1) ** 2).mean() + (before_fake ** 2).mean())
    w0 = [p.detach().clone() for p in disc.parameters()]
    loss_d, loss_g = lsgan_step(disc, opt_d, real, gen * 1.0)
    assert torch.allclose(loss_d, want_d, atol=1e-6) and not loss_d.requires_grad
    assert any(not torch.equal(a, b) for a, b in zip(w0, disc.parameters()))
    with torch.no_grad():
        want_g = ((disc(gen) - 1) ** 2).mean()
    assert torch.allclose(loss_g, want_g, atol=1e-6)
    loss_g.backward()
    assert gen.grad is not None and gen.grad.abs().sum() > 0


def test_push_pull_fill_keeps_known_pixels_and_fills_smoothly():
    from trainer.inpaint.model import push_pull_fill
    torch.manual_seed(0)
    x = torch.rand(2, 3, 37, 50) * 2 - 1  # any size (ceil-mode pyramid)
    m = torch.zeros(2, 1, 37, 50)
    m[:, :, 10:30, 5:25] = 1
    f = push_pull_fill(x, m)
    keep = (m == 0).expand_as(x)
    assert torch.equal(f[keep], x[keep])
    assert f.min() >= x.min() - 1e-6 and f.max() <= x.max() + 1e-6  # convex combinations of known colours
    const = torch.full((1, 3, 40, 40), 0.3)
    mc = torch.zeros(1, 1, 40, 40)
    mc[..., 5:35, 5:35] = 1
    assert torch.allclose(push_pull_fill(const, mc), const, atol=1e-6)  # a flat image is filled flat
    ramp = torch.linspace(-1, 1, 64).view(1, 1, 1, 64).expand(1, 3, 64, 64)  # a horizontal ramp
    mr = torch.zeros(1, 1, 64, 64)
    mr[..., 20:44, 20:44] = 1
    err = (push_pull_fill(ramp, mr) - ramp).abs()[mr.expand_as(ramp) > 0].mean()
    assert err < 0.1 < (torch.zeros_like(ramp) - ramp).abs()[mr.expand_as(ramp) > 0].mean() * 2


def test_fill_refine_starts_at_the_fill_and_keeps_known_pixels():
    from trainer.inpaint.model import FillRefineInpainter, push_pull_fill
    torch.manual_seed(1)
    x = torch.rand(1, 3, 32, 40) * 2 - 1
    m = (torch.rand(1, 1, 32, 40) > 0.7).float()
    for norm in ("an", "in"):
        net = FillRefineInpainter(width=4, norm=norm, n=4).eval()
        with torch.no_grad():
            fill, out = net(x, m)
        assert torch.allclose(out, push_pull_fill(x, m), atol=1e-6)  # zero-initialised head
        torch.nn.init.normal_(net.head.weight, std=0.1)
        with torch.no_grad():
            _, out = net(x, m)
        keep = (m == 0).expand_as(x)
        assert torch.equal(out[keep], x[keep]) and not torch.allclose(out, fill, atol=1e-4)
    assert len(FillRefineInpainter(width=4, norm="an", n=4).an_layers()) == 1
    assert FillRefineInpainter(width=4, norm="in").an_layers() == []
    with pytest.raises(ValueError):
        FillRefineInpainter(width=4)(torch.zeros(1, 3, 36, 40), torch.zeros(1, 1, 36, 40))


def test_user_masks_match_the_described_kinds():
    from trainer.inpaint.data import training_mask, user_mask
    rng = np.random.default_rng(0)
    covers = [user_mask(288, 384, rng, "mixed").mean() for _ in range(20)]
    assert all(0.08 <= c <= 0.18 for c in covers)
    box = user_mask(288, 384, rng, "box")
    ys, xs = np.nonzero(box)
    assert box.sum() == (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)  # one rectangle
    assert 0.15 * 288 - 1 <= ys.max() - ys.min() + 1 <= 0.30 * 288 + 1
    stroke = user_mask(288, 384, rng, "stroke")
    assert 0.005 < stroke.mean() < 0.2
    with pytest.raises(ValueError):
        user_mask(10, 10, rng, "blob")
    for _ in range(20):
        t = training_mask(64, rng)
        assert t.shape == (64, 64) and t.any() and not t.all()


@pytest.mark.parametrize("kind", ["box", "stroke", "mixed"])
def test_committed_user_masks_fit_the_384_px_photos(kind):
    from trainer.inpaint.data import user_mask
    from trainer.inpaint.evaluate import USER_MASK_SEED, cases, navier_stokes
    from trainer.metrics import psnr_u8
    data = cases("test", kind)
    assert len(data) == 8
    rng = np.random.default_rng(USER_MASK_SEED + ("box", "stroke", "mixed").index(kind))
    for name, img, m in data:
        assert max(img.shape[:2]) in range(377, 385) and img.shape[0] % 8 == 0 and img.shape[1] % 8 == 0
        assert m.shape == img.shape[:2] and m.any()
        assert np.array_equal(m, user_mask(*m.shape, rng, kind))  # the committed PNGs are the seeded masks
        if kind == "mixed":
            assert 0.08 <= m.mean() <= 0.18
    name, img, m = data[0]
    ns = navier_stokes(img, m)
    assert np.array_equal(ns[m == 0], img[m == 0]) and psnr_u8(img, ns) > 20
