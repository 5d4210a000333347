"""generate task."""
