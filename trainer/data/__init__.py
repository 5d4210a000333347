"""Training and test data: ``photos`` (photographs from Debian wallpaper and OpenCV sample packages), ``test_photos`` (held-out photos)."""
