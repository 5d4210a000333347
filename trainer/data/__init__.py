"""Training and test data: ``photos`` (Debian wallpaper photographs), ``test_photos`` (held-out photos)."""
