"""The image formats that the command line, the image IO and the training data agree on
(standard library only)."""

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
"""Lower-case suffixes of the image files we read and write (matched case-insensitively)."""

DEFAULT_MAX_PIXELS = 100_000_000
"""Images with more pixels are refused unless the caller raises `max_pixels` (--max-pixels)."""
