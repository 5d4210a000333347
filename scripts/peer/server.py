"""The peer server of issue 32's benchmark (``npm run bench:peer``): what a PyTorch user would write instead of
normgen — FastAPI + uvicorn + Debian's PyTorch, the trainer's own network code, the same pre- and
post-processing as the service — so that normgen's serving overhead can be measured against it.

Weights: each model's PyTorch module (built from its manifest's ``architecture`` with the trainer's code) is
loaded with the **shipped** weights, read from the initializers of ``models/NAME/model.onnx`` (the exporter
keeps PyTorch's parameter names; a missing parameter is an error, except AN's self-sampling branch where it is
off at inference, which the exporter drops), so both servers run the same
network with the same weights.

Routes (a subset of normgen's, same fields): ``POST /v1/translate`` (multipart ``image`` -> PNG, BT.601 luma
in, colour out with ``colorize-pono-auto``, the automatic network, padded by reflection to the model's size
multiple and cropped back), ``POST /v1/upscale`` (``image`` -> the x4 PNG, one pass; normgen tiles inputs
above 256 px, the benchmark sends 256²), ``POST /v1/inpaint``
(``image`` + ``mask``, white = fill -> PNG; pixels outside the hole are the input's), ``POST /v1/generate``
(JSON ``class``, ``seed``, ``count`` -> PNG grid of ceil(sqrt(count)) columns; noise from
``torch.Generator().manual_seed(seed)``, not normgen's xoroshiro128+, so samples differ while the work is the
same), ``GET /readyz``.

Usage: ``/usr/bin/python3 scripts/peer/server.py --port 8090 [--threads 2] [--models-dir models]``.
"""
import argparse
import io
import json
import math
import os
import sys

import numpy as np
import torch
from PIL import Image, ImageOps

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

from fastapi import FastAPI, File, Request, UploadFile  # noqa: E402 (module level: FastAPI reads the annotations)
from fastapi.responses import JSONResponse, Response  # noqa: E402

MODELS: dict[str, tuple[torch.nn.Module, dict]] = {}


def onnx_weights(path: str) -> dict[str, torch.Tensor]:
    """The initializers of an ONNX file as a PyTorch state dict (name -> tensor). A Conv whose weights the
    exporter renamed (``onnx::Conv_N``: an eval-mode BatchNorm's statistics folded into it) gets its module's
    names back from the node's scope (``/blocks.0/conv1/Conv`` -> ``blocks.0.conv1.weight``)."""
    import onnx
    from onnx import numpy_helper
    g = onnx.load(path).graph
    state = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Conv" and n.name.endswith("/Conv"):
            mod = ".".join(p for p in n.name.split("/")[1:-1])
            for inp, suffix in zip(n.input[1:], ("weight", "bias")):
                if inp in state and inp.startswith("onnx::"):
                    state[f"{mod}.{suffix}"] = state[inp]
    return state


def check_fixture(net: torch.nn.Module, model_dir: str) -> float:
    """Run ``net`` on the model's parity fixture; returns the max abs difference to the exported output.
    Raises ValueError above 1e-4 (the peer would not be running the shipped network)."""
    fx = json.load(open(os.path.join(model_dir, "fixture", "fixture.json")))
    specs = fx.get("inputs") or [fx["input"]]
    xs = [torch.from_numpy(np.fromfile(os.path.join(model_dir, "fixture", s["file"]), "<f4").reshape(s["dims"]).copy()) for s in specs]
    want = np.fromfile(os.path.join(model_dir, "fixture", fx["output"]["file"]), "<f4").reshape(fx["output"]["dims"])
    with torch.no_grad():
        d = float(np.abs(net(*xs).numpy() - want).max())
    if d > 1e-4:
        raise ValueError(f"{model_dir}: the peer's network misses the parity fixture by {d:.3g}")
    return d


def load_model(models_dir: str, name: str) -> tuple[torch.nn.Module, dict]:
    """Build ``name``'s network from its manifest and load the shipped weights. Raises ValueError when a
    parameter of the network is not in the ONNX file (or the other way round, for parameters)."""
    d = os.path.join(models_dir, name)
    man = json.load(open(os.path.join(d, "manifest.json")))
    arch = man.get("architecture", {})
    if man["task"] == "translate":
        from trainer.colorize.model import Translator
        head = "classify" if "ab_bins" in arch else "l1"
        net = Translator(1, arch["ngf"], arch["n_blocks"], True, "colorize", head, chroma_gain=arch.get("chroma_gain", 1.0))
    elif man["task"] == "inpaint":
        from trainer.inpaint.export import _Served
        from trainer.inpaint.train import build_model
        net = _Served(build_model(arch), bool(man["serving"].get("flip_tta")), arch.get("texture"))  # 2.0.0: + texture transfer
    elif man["task"] == "upscale":
        from trainer.upscale.model import build
        net = build({k: arch[k] for k in ("nf", "n_mid", "n_lr")})
    elif man["task"] == "generate":
        from trainer.generate.model import Generator
        from trainer.normalization import AttentiveNormalization
        net = Generator(ch=arch["ch"], use_an=arch["an"], n=arch["entities"])
        for m in net.modules():
            if isinstance(m, AttentiveNormalization):
                m.inference_sampling = arch.get("an_inference_sampling", "off")
    else:
        raise ValueError(f"{name}: task {man['task']} is not served by the peer")
    state = onnx_weights(os.path.join(d, man["onnx"]["file"]))
    from trainer.normalization import AttentiveNormalization
    params = {k for k, _ in net.named_parameters()}
    # AN's self-sampling branch (key, query, t) is not in a graph exported with it off (the paper's inference rule)
    unused = {f"{mn}.{pn}" for mn, m in net.named_modules() if isinstance(m, AttentiveNormalization) and m.inference_sampling == "off"
              for pn in ("key.weight", "key.bias", "query.weight", "query.bias", "t")}
    missing = sorted(params - set(state) - unused)
    if missing:
        raise ValueError(f"{name}: parameters not in model.onnx: {missing[:5]}")
    own = net.state_dict()
    new = {k: state[k].reshape(own[k].shape) if k in state else v for k, v in own.items()}
    for k in own:  # a BatchNorm whose statistics were folded into the conv before it: identity statistics
        if k.endswith(".running_mean") and k not in state:
            eps = dict(net.named_modules())[k.rsplit(".", 1)[0]].eps
            new[k] = torch.zeros_like(own[k])
            new[k.replace("running_mean", "running_var")] = torch.full_like(own[k], 1.0 - eps)
    net.load_state_dict(new)
    net.eval()
    check_fixture(net, d)
    return net, man


def png(rgb: np.ndarray) -> bytes:
    """H x W (x 3) uint8 -> PNG bytes (PIL, zlib level 6: sharp's default, as normgen encodes)."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG", compress_level=6)
    return buf.getvalue()


def to_u8(t: torch.Tensor) -> np.ndarray:
    """C x H x W float in [-1, 1] -> H x W x C uint8, rounded and clipped (the service's mapping)."""
    return ((t.permute(1, 2, 0).numpy() + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)


def pad_to(a: np.ndarray, multiple: int) -> np.ndarray:
    """Pad H x W (x C) on the bottom and right by reflection (edge copy when too thin) to multiples of ``multiple``
    and at least 16 px, as normgen pads before a pass."""
    h, w = a.shape[:2]
    ph, pw = -(-max(h, 16) // multiple) * multiple - h, -(-max(w, 16) // multiple) * multiple - w
    return np.pad(a, ((0, ph), (0, pw)) + ((0, 0),) * (a.ndim - 2), mode="reflect" if ph < h and pw < w else "edge")


def build_app(models_dir: str):
    """The FastAPI app with its four models loaded from ``models_dir`` (module docstring for the routes).
    Raises ValueError when a model cannot be rebuilt with its shipped weights (see :func:`load_model`)."""
    app = FastAPI(title="normgen peer (FastAPI + PyTorch)")
    for name in ("colorize-pono-auto", "upscale-pono", "inpaint-an", "fashion-an"):
        MODELS[name] = load_model(models_dir, name)

    def rgb_of(data: bytes) -> np.ndarray:
        return np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))

    @app.get("/readyz")
    def readyz():
        return {"ready": True, "models": sorted(MODELS)}

    @app.post("/v1/translate")
    def translate(image: UploadFile = File(...)):
        net, man = MODELS["colorize-pono-auto"]
        rgb = rgb_of(image.file.read()).astype(np.float32)
        h, w = rgb.shape[:2]
        luma = np.floor(rgb @ np.array([0.299, 0.587, 0.114], np.float32))  # sharp's recomb truncates too
        x = pad_to(luma, man["inputs"][0]["size_multiple"]) / 127.5 - 1.0
        with torch.no_grad():
            y = net(torch.from_numpy(x.astype(np.float32))[None, None])[0]
        return Response(png(to_u8(y)[:h, :w]), media_type="image/png")

    @app.post("/v1/upscale")
    def upscale(image: UploadFile = File(...)):
        net, man = MODELS["upscale-pono"]
        rgb = rgb_of(image.file.read())
        h, w = rgb.shape[:2]
        x = pad_to(rgb, man["inputs"][0]["size_multiple"]).astype(np.float32) / 127.5 - 1.0
        with torch.no_grad():
            y = net(torch.from_numpy(x).permute(2, 0, 1)[None])[0]
        k = man["serving"]["scale"]
        return Response(png(to_u8(y)[: k * h, : k * w]), media_type="image/png")

    @app.post("/v1/inpaint")
    def inpaint(image: UploadFile = File(...), mask: UploadFile = File(...)):
        net, man = MODELS["inpaint-an"]
        rgb = rgb_of(image.file.read())
        m = np.asarray(Image.open(io.BytesIO(mask.file.read())).convert("L")) > 127
        h, w = m.shape
        mult = man["inputs"][0]["size_multiple"]
        x = pad_to(rgb, mult).astype(np.float32) / 127.5 - 1.0
        mp = pad_to(m.astype(np.float32), mult)
        with torch.no_grad():
            y = net(torch.from_numpy(x).permute(2, 0, 1)[None], torch.from_numpy(mp)[None, None])[0]
        out = np.where(m[..., None], to_u8(y)[:h, :w], rgb)
        return Response(png(out), media_type="image/png")

    @app.post("/v1/generate")
    async def generate(request: Request):
        body = await request.json()
        net, man = MODELS["fashion-an"]
        classes = man["classes"]
        c = body["class"]
        k = c if isinstance(c, int) else classes.index(c)
        n = int(body.get("count", 1))
        g = torch.Generator().manual_seed(int(body.get("seed", 0)))
        z = torch.randn(n, man["z_dim"], generator=g)
        y = torch.zeros(n, len(classes))
        y[:, k] = 1
        with torch.no_grad():
            imgs = net(z, y)
        cols = math.ceil(math.sqrt(n))
        side = imgs.shape[-1]
        grid = np.full((math.ceil(n / cols) * side, cols * side, imgs.shape[1]), 0, np.uint8)
        for i in range(n):
            r, q = divmod(i, cols)
            grid[r * side:(r + 1) * side, q * side:(q + 1) * side] = to_u8(imgs[i])
        return Response(png(grid[..., 0] if grid.shape[-1] == 1 else grid), media_type="image/png")

    @app.exception_handler(Exception)
    async def problem(_req, exc):  # a bad request must not take the peer down either
        return JSONResponse({"title": type(exc).__name__, "detail": str(exc)}, status_code=500)

    return app


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, default=8090)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--models-dir", default=os.path.join(os.path.dirname(__file__), "..", "..", "models"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    import uvicorn
    uvicorn.run(build_app(a.models_dir), host=a.host, port=a.port, log_level="warning", workers=1)


if __name__ == "__main__":
    main()
