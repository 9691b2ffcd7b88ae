"""The built-in test card: an image the package draws itself, made to show geometry and aliasing.

It has a one-pixel grid, a zone plate (concentric rings whose frequency rises to Nyquist at
the edge: resampling without a low-pass filter shows moiré there), circles, diagonal lines,
colour bars and text, so crops, flips, rotations and aliasing are all visible at a glance.
"""

from __future__ import annotations

import math

import torch
from PIL import Image, ImageDraw
from torch import Tensor

__all__ = ["test_card", "zone_plate"]


def zone_plate(height: int, width: int, max_frequency: float = 0.5) -> Tensor:
    """``(H, W)`` zone plate in ``[0, 1]``: local frequency grows linearly to ``max_frequency``
    cycles per pixel at the nearest edge."""
    y = torch.arange(height, dtype=torch.float64) + 0.5 - height / 2
    x = torch.arange(width, dtype=torch.float64) + 0.5 - width / 2
    radius_sq = y[:, None] ** 2 + x[None, :] ** 2
    # phase = k r^2 has local frequency k r / pi; reach max_frequency at r = min(H, W) / 2.
    k = math.pi * max_frequency / (min(height, width) / 2)
    return (0.5 + 0.5 * torch.cos(k * radius_sq)).float()


def test_card(height: int = 384, width: int = 512) -> Tensor:
    """The test card as a float ``(3, H, W)`` tensor in ``[0, 1]``.

    Examples:
        >>> test_card(96, 128).shape
        torch.Size([3, 96, 128])
    """
    image = Image.new("RGB", (width, height), (40, 40, 48))
    draw = ImageDraw.Draw(image)
    for x in range(0, width, 32):
        draw.line([(x, 0), (x, height)], fill=(90, 90, 100))
    for y in range(0, height, 32):
        draw.line([(0, y), (width, y)], fill=(90, 90, 100))
    bars = [(230, 230, 230), (230, 230, 40), (40, 230, 230), (40, 200, 40), (230, 40, 230), (230, 40, 40), (40, 40, 230)]
    bar_w = width // (2 * len(bars))
    for i, colour in enumerate(bars):
        draw.rectangle([i * bar_w, 0, (i + 1) * bar_w - 1, height // 8], fill=colour)
    cx, cy = width * 3 // 4, height // 2
    for r in range(8, min(width, height) // 3, 12):
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=(250, 200, 60), width=2)
    draw.line([(0, height - 1), (width // 2, height // 4)], fill=(255, 255, 255), width=1)
    draw.line([(0, height // 4), (width // 2, height - 1)], fill=(255, 120, 120), width=3)
    for i in range(12):  # fine vertical stripes 1..4 pixels wide
        x0 = width // 2 - 150 + i * 8
        draw.rectangle([x0, height - 60, x0 + 1 + i // 3, height - 10], fill=(255, 255, 255))
    draw.text((8, height // 8 + 8), "diffaug test card  (0,0) top-left", fill=(255, 255, 255))
    draw.text((width - 110, height - 20), "bottom-right", fill=(255, 255, 255))
    card = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).reshape(height, width, 3)
    card = card.permute(2, 0, 1).float() / 255.0
    # A zone plate in the lower-left quadrant.
    size = min(height, width) // 3
    top, left = height // 2 - size // 2, width // 4 - size // 2
    card[:, top : top + size, left : left + size] = zone_plate(size, size)
    return card
