"""inpaint task."""
