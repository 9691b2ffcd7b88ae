"""The reference every exact crop is checked against: plain slicing."""

import torch


def slices(images, boxes, size):
    """``images[b, :, y:y+h, x:x+w]`` for each integer XYXY box ``(x, y, ...)`` of ``boxes`` (B, 4), stacked."""
    h, w = size
    return torch.stack([img[:, y : y + h, x : x + w] for img, (x, y, _, _) in zip(images, boxes.long().tolist(), strict=True)])
