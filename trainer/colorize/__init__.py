"""colorize task."""
