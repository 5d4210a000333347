"""normgen trainer: PyTorch training, evaluation and ONNX export of normgen's models.

Run with Debian's interpreter: ``/usr/bin/python3 -m trainer --help`` (``TASK VERB [options]``).

One package per task, each shaped the same (``model.py`` networks, ``data.py`` where task-specific,
``train.py``, ``evaluate.py``, ``export.py``, ``cli.py`` its verbs): ``colorize`` (PONO-MS translator),
``inpaint`` (AN inpainter), ``upscale`` (PONO-MS x4 upscaler), ``generate`` (AN GAN + the Fashion-MNIST
evaluator, ``train_evaluator.py``).
Shared (the core: it imports no task; tasks register what they add in ``registry``): ``normalization`` (PONO, MS,
DMS, IN, AN, mixture AN, CBN), ``loop`` (schedule, EMA, LSGAN round), ``distributed`` (torchrun / DDP, the share
of the global batch, precision), ``patchgan`` (discriminator of colorize and inpaint), ``export`` (the one ONNX
exporter, provenance), ``manifest`` (its writer), ``graph`` / ``explain`` (graph rewrites, explain.onnx),
``metrics`` (PSNR/SSIM), ``color`` (luma / YCbCr / uint8), ``data.photos`` (collections, the in-memory pyramid),
``data.stream`` (samples by index, streamed folders), ``data.test_photos``, ``cli`` (argument helpers),
``torchrun`` (torchrun with PyTorch 1.13's Python 3.11 fix), ``bench_an`` (AN vs self-attention cost) and
``bench_train`` (1 vs 2 processes, streamed RSS: ``npm run bench:train``).
"""
