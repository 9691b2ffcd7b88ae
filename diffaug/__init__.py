"""diffaug: torchvision-style augmentations for PyTorch, differentiable in their own parameters.

Example:
    >>> import torch, diffaug as da
    >>> crop = da.RandomResizedCrop(32)
    >>> crop(torch.rand(8, 3, 64, 64)).shape
    torch.Size([8, 3, 32, 32])
"""

from diffaug import distributions, functional
from diffaug.transforms import BoxCrop, CropParams, GeometricTransform, Params, RandomResizedCrop, ZoomCrop

__version__ = "0.1.0"

__all__ = [
    "BoxCrop",
    "CropParams",
    "GeometricTransform",
    "Params",
    "RandomResizedCrop",
    "ZoomCrop",
    "distributions",
    "functional",
]
