"""Image helpers: [-1, 1] floats <-> uint8, grids of samples, PNG files."""

from __future__ import annotations

import os

import numpy as np


def to_uint8(images) -> np.ndarray:
    """[-1, 1] floats -> uint8 as round((x + 1) * 127.5), clipped; uint8 passes through."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    return np.clip(np.round((images.astype(np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def make_grid(images, rows: int, padding: int = 2) -> np.ndarray:
    """[rows * cols, H, W, C] images (row-major) -> one uint8 [H', W', C] picture, white gaps."""
    images = to_uint8(images)
    n, h, w, c = images.shape
    if n % rows:
        raise ValueError(f"{n} images do not fill {rows} rows.")
    cols = n // rows
    grid = np.full((rows * (h + padding) + padding, cols * (w + padding) + padding, c), 255, np.uint8)
    for i in range(n):
        r, col = divmod(i, cols)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[top : top + h, left : left + w] = images[i]
    return grid


def save_png(image, path: str | os.PathLike) -> None:
    """Writes a uint8 image [H, W, 1 or 3] (or [H, W]) as PNG with pillow."""
    from PIL import Image

    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"save_png needs a uint8 image, got {image.dtype}.")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    Image.fromarray(image).save(path, format="PNG")
