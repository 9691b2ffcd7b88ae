"""diffaug: torchvision-style augmentations for PyTorch, differentiable in their own parameters.

Example:
    >>> import torch, diffaug as da
    >>> crop = da.RandomResizedCrop(32)
    >>> crop(torch.rand(8, 3, 64, 64)).shape
    torch.Size([8, 3, 32, 32])
"""

from diffaug import distributions, functional
from diffaug.transforms import (
    AffineParams,
    BoxCrop,
    CenterCrop,
    Compose,
    ComposeParams,
    CropParams,
    GeometricTransform,
    MultiCrop,
    MultiCropParams,
    Params,
    RandomAffine,
    RandomCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomRotation,
    RandomTransform,
    RandomVerticalFlip,
    Resize,
    RotationParams,
    ZoomCrop,
)

__version__ = "0.1.0"

__all__ = [
    "MultiCrop",
    "MultiCropParams",
    "Compose",
    "ComposeParams",
    "AffineParams",
    "CenterCrop",
    "RandomAffine",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomRotation",
    "RandomVerticalFlip",
    "Resize",
    "RotationParams",
    "BoxCrop",
    "CropParams",
    "GeometricTransform",
    "Params",
    "RandomTransform",
    "RandomResizedCrop",
    "ZoomCrop",
    "distributions",
    "functional",
]
