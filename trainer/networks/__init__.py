"""normgen networks: ``translator`` (PONO-MS ResNet generator), ``patchgan`` (pix2pix discriminator)."""
