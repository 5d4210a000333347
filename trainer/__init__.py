"""normgen trainer: PyTorch training, evaluation and ONNX export of normgen's models.

Run with Debian's interpreter: ``/usr/bin/python3 -m trainer --help``.
Modules: ``normalization`` (PONO, MS, IN), ``color`` (luma / YCbCr), ``networks``,
``data``, ``train_translator``, ``evaluate``, ``export``.
"""
