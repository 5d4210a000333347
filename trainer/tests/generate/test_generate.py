"""Issue 4: Fashion-MNIST reader, mixture-of-affine AN, conditional BN, classifier, GAN networks,
their export, and smoke runs of the classifier / GAN training, evaluation and export on the real data."""
import json
import os
from argparse import Namespace

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F

from trainer.generate import data as fashion
from trainer.generate.evaluate import fid, is_score, load_images
from trainer.generate.model import Classifier
from trainer.generate.model import Discriminator, Generator, standing_stats
from trainer.normalization import AttentiveNormalization, ConditionalBN, MixtureAffineAN


def test_fashion_idx_files_have_the_documented_shapes_and_balanced_labels():
    x, y = fashion.load("test")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8 and y.shape == (10000,)
    assert np.array_equal(np.bincount(y), np.full(10, 1000))
    assert len(fashion.CLASSES) == 10
    s = fashion.to_signed(x[:3])
    assert s.shape == (3, 1, 28, 28) and s.min() >= -1 and s.max() <= 1
    with pytest.raises(ValueError):
        fashion.load("val")


def test_mixture_an_matches_eq7_written_out():
    torch.manual_seed(0)
    an = MixtureAffineAN(6, k=3).train()
    x = torch.randn(4, 6, 5, 5) * 3 + 1
    out = an(x)
    x_hat = (x - x.mean((0, 2, 3), keepdim=True)) / torch.sqrt(x.var((0, 2, 3), unbiased=False, keepdim=True) + an.eps)
    lam = torch.sigmoid(an.fc(x.mean((2, 3))))  # eq. 6
    ref = sum(lam[:, k, None, None, None] * (an.gamma[k][None, :, None, None] * x_hat + an.beta[k][None, :, None, None])
              for k in range(3))  # eq. 7
    assert torch.allclose(out, ref, atol=1e-5)
    # initialisation as the paper: gamma ~ 1 + 0.1 N(0, 1), beta ~ 0.1 N(0, 1)
    big = MixtureAffineAN(512, k=10)
    assert abs(big.gamma.mean().item() - 1) < 0.02 and 0.08 < big.gamma.std().item() < 0.12
    assert abs(big.beta.mean().item()) < 0.02 and 0.08 < big.beta.std().item() < 0.12


def test_mixture_an_with_saturated_single_component_is_bn():
    an = MixtureAffineAN(4, k=1)
    with torch.no_grad():
        an.gamma.fill_(1.0); an.beta.zero_(); an.fc.weight.zero_(); an.fc.bias.fill_(50.0)  # lambda = 1
    bn = torch.nn.BatchNorm2d(4, affine=False)
    x = torch.randn(8, 4, 3, 3)
    assert torch.allclose(an(x), bn(x), atol=1e-5)
    an.eval(); bn.eval()
    assert torch.allclose(an(x), bn(x), atol=1e-5)


def test_conditional_bn_picks_the_class_affine_and_is_linear_in_the_class_weights():
    torch.manual_seed(0)
    cbn = ConditionalBN(5, 10).eval()
    with torch.no_grad():
        cbn.gamma_embed.normal_(); cbn.beta_embed.normal_()
    x = torch.randn(2, 5, 4, 4)
    y3, y7 = F.one_hot(torch.tensor([3, 3]), 10).float(), F.one_hot(torch.tensor([7, 7]), 10).float()
    x_hat = x / torch.sqrt(torch.tensor(1.0 + cbn.eps))  # running stats at init: mean 0, var 1
    assert torch.allclose(cbn(x, y3), cbn.gamma_embed[3][None, :, None, None] * x_hat + cbn.beta_embed[3][None, :, None, None], atol=1e-6)
    mix = cbn(x, 0.25 * y3 + 0.75 * y7)
    assert torch.allclose(mix, 0.25 * cbn(x, y3) + 0.75 * cbn(x, y7), atol=1e-5)


@pytest.mark.parametrize("norm", ["bn", "an"])
def test_classifier_shapes_and_norm_placement(norm):
    net = Classifier(width=8, norm=norm, k=3)
    assert net(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    assert net.features(torch.randn(3, 1, 28, 28)).shape == (3, 32)
    n_an = sum(isinstance(m, MixtureAffineAN) for m in net.modules())
    assert n_an == (6 if norm == "an" else 0)
    with pytest.raises(ValueError):
        Classifier(norm="gn")


def test_generator_and_discriminator_shapes_an_placement_and_spectral_norm():
    g, d = Generator(ch=8, n=4), Discriminator(ch=8, n=4)
    z, y = torch.randn(3, 128), F.one_hot(torch.tensor([0, 4, 9]), 10).float()
    img = g(z, y)
    assert img.shape == (3, 1, 28, 28) and img.min() >= -1 and img.max() <= 1
    assert d(img, y).shape == (3,)
    assert len(g.an_layers()) == 1 and len(d.an_layers()) == 1
    assert g.an.channels == 8 and isinstance(g.an, AttentiveNormalization)
    assert not Generator(ch=8, use_an=False).an_layers() and not Discriminator(ch=8, use_an=False).an_layers()
    assert all(hasattr(m, "weight_orig") for m in d.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))


def test_generator_in_eval_is_deterministic_batch_independent_and_linear_in_y_at_the_input():
    torch.manual_seed(1)
    g = Generator(ch=8, n=4)
    standing_stats(g, batches=4, batch=20)
    assert not g.training and not g.an.training
    z = torch.randn(4, 128)
    y = F.one_hot(torch.tensor([1, 2, 3, 4]), 10).float()
    a, b = g(z, y), g(z, y)
    assert torch.equal(a, b)
    assert torch.allclose(g(z[:1], y[:1]), a[:1], atol=1e-6)


def test_generator_exports_without_random_ops(tmp_path):
    g = Generator(ch=8, n=4).eval()
    path = str(tmp_path / "g.onnx")
    torch.onnx.export(g, (torch.zeros(2, 128), torch.eye(10)[:2]), path, opset_version=17, input_names=["z", "y"],
                      output_names=["image"], dynamic_axes={"z": {0: "b"}, "y": {0: "b"}, "image": {0: "b"}})
    ops = {n.op_type for n in onnx.load(path).graph.node}
    assert not [o for o in ops if "Random" in o], ops


def test_fid_is_zero_for_identical_sets_and_grows_with_a_shift_and_is_score_bounds():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(2000, 8))
    assert fid(f, f) == pytest.approx(0, abs=1e-6)
    assert fid(f, f + 1.0) == pytest.approx(8.0, rel=0.05)
    assert is_score(np.full((10, 10), 0.1)) == pytest.approx(1.0)
    assert is_score(np.eye(10)) == pytest.approx(10.0, rel=1e-6)


def test_smoke_classifier_gan_evaluate_and_export_on_real_data(tmp_path):
    from trainer.__main__ import main as cli
    clf_dir, gan_dir, out = tmp_path / "clf", tmp_path / "gan", tmp_path / "model"
    assert cli(["generate", "train-evaluator", "--out", str(clf_dir), "--norm", "an", "--width", "4", "--max-steps", "3", "--threads", "2"]) == 0
    assert json.load(open(clf_dir / "summary.json"))["steps"] == 3
    assert cli(["generate", "train", "--out", str(gan_dir), "--ch", "8", "--steps", "2", "--batch", "8", "--ckpt-every", "2", "--threads", "2"]) == 0
    # resume continues from the checkpoint
    assert cli(["generate", "train", "--out", str(gan_dir), "--ch", "8", "--steps", "3", "--batch", "8", "--ckpt-every", "2", "--threads", "2",
                "--resume", "--snapshot-every", "1"]) == 0
    assert torch.load(gan_dir / "checkpoint.pt")["step"] == 3
    assert sorted(os.listdir(gan_dir / "snapshots")) == ["ema_000003.pt"]  # resumed at 2: only step 3 is new
    # the convergence curve: one point per snapshot; kept, not recomputed, on the next call
    curve, plot = tmp_path / "curve.json", tmp_path / "curve.png"
    args = ["generate", "curve", f"an={gan_dir}", "--evaluator", str(clf_dir / "model.pt"), "--samples", "100", "--json", str(curve), "--threads", "2"]
    assert cli(args + ["--plot", str(plot)]) == 0
    c = json.load(open(curve))
    assert [(p["label"], p["step"]) for p in c["points"]] == [("an", 3)] and plot.stat().st_size > 1000
    assert 0 <= c["points"][0]["min_class_accuracy"] <= c["points"][0]["accuracy"] and "fid" in c["floor"]
    c["points"][0]["fid"] = -1.0  # a marker: a kept point is not recomputed
    json.dump(c, open(curve, "w"))
    assert cli(args) == 0 and json.load(open(curve))["points"][0]["fid"] == -1.0
    metrics = tmp_path / "m.json"
    assert cli(["generate", "evaluate", f"an={gan_dir}/final.pt", "--evaluator", str(clf_dir / "model.pt"), "--samples", "200",
                "--json", str(metrics), "--threads", "2"]) == 0
    m = json.load(open(metrics))["generators"]["an"]
    assert set(m) >= {"fid", "intra_fid_mean", "accuracy", "is_style", "intra_fid", "class_accuracy"} and len(m["intra_fid"]) == 10
    assert m["min_class_accuracy"] == min(m["class_accuracy"].values())
    assert cli(["generate", "export", str(gan_dir / "final.pt"), "--out-dir", str(out), "--metrics", str(metrics), "--command", "smoke"]) == 0
    manifest = json.load(open(out / "manifest.json"))
    assert manifest["task"] == "generate" and manifest["classes"] == fashion.CLASSES
    assert [i["name"] for i in manifest["inputs"]] == ["z", "y"] and os.path.getsize(out / "fixture" / "output.f32") == 4 * 28 * 28 * 4


def test_lr_decay_schedule_is_constant_then_linear_to_zero_and_rejects_bad_starts():
    from trainer.generate.train import lr_scale
    assert [lr_scale(s, 10, 0) for s in (0, 5, 9)] == [1.0, 1.0, 1.0]  # 0 = constant
    assert [lr_scale(s, 10, 6) for s in (0, 5, 6, 8, 10)] == [1.0, 1.0, 1.0, 0.5, 0.0]
    for bad in (-1, 10, 11):
        with pytest.raises(ValueError):
            lr_scale(0, 10, bad)


def test_gan_training_applies_the_decayed_learning_rates(tmp_path):
    from trainer.__main__ import main as cli
    out = tmp_path / "gan"
    assert cli(["generate", "train", "--out", str(out), "--ch", "8", "--steps", "4", "--batch", "8", "--threads", "2",
                "--lr-decay-from", "2", "--ckpt-every", "4"]) == 0
    ck = torch.load(out / "checkpoint.pt")
    # the last step (index 3) ran at (4 - 3) / (4 - 2) = 0.5 of each rate
    assert ck["opt_g"]["param_groups"][0]["lr"] == pytest.approx(0.5e-4)
    assert ck["opt_d"]["param_groups"][0]["lr"] == pytest.approx(2e-4)
    assert json.load(open(out / "summary.json"))["lr_decay_from"] == 2
    with pytest.raises(ValueError):
        cli(["generate", "train", "--out", str(tmp_path / "bad"), "--ch", "8", "--steps", "4", "--lr-decay-from", "4"])


def test_service_samples_load_with_their_requested_class_in_order_and_bad_sizes_are_rejected(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    pixels = {}
    for c in (0, 9, 3):
        for i in (0, 1, 10):
            a = rng.integers(0, 256, (28, 28), dtype=np.uint8)
            pixels[(c, i)] = a
            Image.fromarray(a).save(tmp_path / f"{c}_{i}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    x, y = load_images(str(tmp_path))
    assert x.shape == (9, 1, 28, 28) and x.dtype == torch.float32
    assert y.tolist() == [0, 0, 0, 3, 3, 3, 9, 9, 9]
    # sorted numerically by (class, i): 9_10 is the last one, and the pixels map to v / 127.5 - 1
    np.testing.assert_allclose(x[-1, 0].numpy(), pixels[(9, 10)] / 127.5 - 1, atol=1e-6)
    Image.fromarray(np.zeros((27, 28), np.uint8)).save(tmp_path / "5_0.png")
    with pytest.raises(ValueError, match="expected 28x28"):
        load_images(str(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no <class>_<i>.png"):
        load_images(str(tmp_path / "empty"))


def test_discriminator_class_head_gives_logits_only_when_built_with_it():
    d, y = Discriminator(ch=8, n=4, aux_classifier=True), F.one_hot(torch.tensor([0, 7]), 10).float()
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    d.eval()  # spectral norm's power iteration runs on every training-mode call
    score, logits = d(x, y, with_logits=True)
    assert score.shape == (2,) and logits.shape == (2, 10)
    assert torch.allclose(score, d(x, y), atol=1e-6)  # the head does not change the hinge score
    assert hasattr(d.classify, "weight_orig")  # spectrally normalized like every other linear of D
    with pytest.raises(ValueError):
        Discriminator(ch=8, n=4)(x, y, with_logits=True)


def test_aux_class_loss_can_be_switched_on_when_resuming_a_run_trained_without_it(tmp_path):
    from trainer.__main__ import main as cli
    out = tmp_path / "gan"
    base = ["generate", "train", "--out", str(out), "--ch", "8", "--batch", "8", "--threads", "2", "--ckpt-every", "2"]
    assert cli(base + ["--steps", "2"]) == 0
    before = torch.load(out / "checkpoint.pt")
    assert not any(k.startswith("classify.") for k in before["d"]) and len(before["opt_d"]["param_groups"]) == 1
    assert cli(base + ["--steps", "4", "--aux-weight", "1", "--resume"]) == 0
    after = torch.load(out / "checkpoint.pt")
    assert after["step"] == 4 and len(after["opt_d"]["param_groups"]) == 2
    # the old weights went on training; the new head exists and was trained by the real-image CE term
    assert all(not torch.equal(v, after["d"][k]) for k, v in before["d"].items() if k.endswith("weight_orig"))
    head_init = Discriminator(ch=8, n=16, aux_classifier=True).classify.weight_orig.shape
    assert after["d"]["classify.weight_orig"].shape == head_init and after["opt_d"]["state"]
    assert json.load(open(out / "summary.json"))["aux_weight"] == 1.0
    assert cli(base + ["--steps", "6", "--aux-weight", "1", "--resume"]) == 0  # a run with the head resumes as is
    assert torch.load(out / "checkpoint.pt")["step"] == 6
    with pytest.raises(ValueError):
        cli(base + ["--steps", "8", "--aux-weight", "-1", "--resume"])
