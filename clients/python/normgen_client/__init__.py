"""normgen_client: a small typed client of the normgen image API, on ``requests``.

    from normgen_client import Normgen, NormgenError
    ng = Normgen("http://localhost:8080", token=None)
    colour = ng.translate(open("gray.png", "rb").read())                         # PNG bytes
    hinted = ng.translate(gray, hint_points=[{"x": 10, "y": 20, "color": "#3366cc"}])  # the default colorizer takes hints
    filled = ng.inpaint(photo_bytes, mask_bytes, output_format="webp")           # bytes (white mask = fill)
    grid, seed = ng.generate("Sneaker", seed=42, count=16)                       # PNG bytes, the seed used
    ng.models()                                                                  # list of model summaries

Every call raises :class:`NormgenError` (``status`` and the RFC 9457 ``problem`` document) on an error reply.
"""
from __future__ import annotations

import json
from typing import Any, Optional, Union

import requests

__all__ = ["Normgen", "NormgenError"]
__version__ = "0.3.0"


class NormgenError(Exception):
    """An error reply: ``status`` (HTTP) and ``problem`` (the problem+json document; ``problem["detail"]``)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status} {problem.get('title', '')}: {problem.get('detail', '')}")
        self.status = status
        self.problem = problem


class Normgen:
    """A client for one server. ``base_url`` like ``http://localhost:8080``; ``token``: a bearer token when the
    server sets API_KEYS; ``timeout``: seconds per request."""

    def __init__(self, base_url: str, token: Optional[str] = None, timeout: float = 120.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout

    def _check(self, r: requests.Response) -> requests.Response:
        if r.status_code >= 400:
            try:
                problem = r.json()
            except ValueError:
                problem = {"title": r.reason, "status": r.status_code, "detail": r.text[:200]}
            raise NormgenError(r.status_code, problem)
        return r

    def translate(self, image: bytes, model: Optional[str] = None, output_format: Optional[str] = None,
                  hints: Optional[bytes] = None, hint_points: Optional[list[dict[str, Any]]] = None) -> bytes:
        """Colorize (translate) an image: any raster format's bytes -> image bytes of ``output_format`` ("png",
        "jpeg", "webp"; default the input's: JPEG in, JPEG out; PNG for formats other than JPEG and WebP).
        ``hints`` (RGBA image bytes of the input's size) or ``hint_points`` ([{x, y, color, radius?}]) for a
        model that takes colour hints."""
        files: dict[str, Any] = {"image": ("image", image)}
        if hints is not None:
            files["hints"] = ("hints.png", hints)
        data: dict[str, str] = {"output_format": output_format} if output_format else {}
        if model:
            data["model"] = model
        if hint_points is not None:
            data["hint_points"] = json.dumps(hint_points)
        return self._check(self.session.post(f"{self.base_url}/v1/translate", files=files, data=data, timeout=self.timeout)).content

    def inpaint(self, image: bytes, mask: bytes, model: Optional[str] = None, output_format: Optional[str] = None) -> bytes:
        """Fill the white pixels of ``mask`` (same size as ``image``) -> image bytes (``output_format`` as
        :meth:`translate`); pixels outside the hole stay exact in a PNG reply."""
        data = {**({"output_format": output_format} if output_format else {}), **({"model": model} if model else {})}
        r = self.session.post(f"{self.base_url}/v1/inpaint", files={"image": ("image", image), "mask": ("mask", mask)},
                              data=data, timeout=self.timeout)
        return self._check(r).content

    def upscale(self, image: bytes, scale: int = 4, model: Optional[str] = None, output_format: Optional[str] = None) -> bytes:
        """The photo ``scale`` (4 or 2) times larger -> image bytes (exactly scale x its width and height;
        ``output_format`` as :meth:`translate`)."""
        data = {"scale": str(scale), **({"output_format": output_format} if output_format else {}), **({"model": model} if model else {})}
        r = self.session.post(f"{self.base_url}/v1/upscale", files={"image": ("image", image)}, data=data, timeout=self.timeout)
        return self._check(r).content

    def explain(self, model: str, image: Optional[bytes] = None, mask: Optional[bytes] = None,
                cls: Optional[Union[str, int]] = None, seed: Optional[int] = None) -> dict[str, Any]:
        """What the network sees (``POST /v1/explain``): ``{model, width, height, maps: [{name, layer, kind, width,
        height, b64_png, ...}]}`` for the task inputs of ``model`` (image; image + mask; class + seed)."""
        files = {k: (k, v) for k, v in (("image", image), ("mask", mask)) if v is not None}
        data = {"model": model, **({"class": str(cls)} if cls is not None else {}), **({"seed": str(seed)} if seed is not None else {})}
        if not files:  # generate models: a JSON body
            return self._check(self.session.post(f"{self.base_url}/v1/explain", json={"model": model, "class": cls, "seed": seed or 0}, timeout=self.timeout)).json()
        return self._check(self.session.post(f"{self.base_url}/v1/explain", files=files, data=data, timeout=self.timeout)).json()

    def generate(self, cls: Union[str, int], seed: Optional[int] = None, count: int = 1, size: Optional[int] = None,
                 model: Optional[str] = None) -> tuple[bytes, int]:
        """Class-conditional samples (a grid PNG for count > 1) -> (PNG bytes, the seed used). Same seed, same bytes."""
        body: dict[str, Any] = {"class": cls, "count": count}
        for k, v in (("seed", seed), ("size", size), ("model", model)):
            if v is not None:
                body[k] = v
        r = self._check(self.session.post(f"{self.base_url}/v1/generate", json=body, timeout=self.timeout))
        return r.content, int(r.headers["X-Seed"])

    def models(self) -> list[dict[str, Any]]:
        """The installed models (``GET /v1/models``)."""
        return self._check(self.session.get(f"{self.base_url}/v1/models", timeout=self.timeout)).json()["models"]
