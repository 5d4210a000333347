"""normgen trainer: PyTorch training, evaluation and ONNX export of normgen's models.

Run with Debian's interpreter: ``/usr/bin/python3 -m trainer --help`` (``TASK VERB [options]``).

One package per task, each shaped the same (``model.py`` networks, ``data.py`` where task-specific,
``train.py``, ``evaluate.py``, ``export.py``, ``cli.py`` its verbs): ``colorize`` (PONO-MS translator),
``inpaint`` (AN inpainter), ``generate`` (AN GAN + the Fashion-MNIST evaluator, ``train_evaluator.py``).
Shared: ``normalization`` (PONO, MS, IN, AN, mixture AN, CBN), ``loop`` (schedule, EMA, LSGAN round),
``patchgan`` (discriminator of colorize and inpaint), ``export`` (the one ONNX exporter, provenance),
``metrics`` (PSNR/SSIM), ``color`` (luma / YCbCr / uint8), ``data.photos`` and ``data.test_photos``,
``cli`` (argument helpers), ``bench_an`` (AN vs self-attention cost, ``python3 -m trainer.bench_an``).
"""
