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
    CutMix,
    ErasingParams,
    GeometricTransform,
    MixParams,
    MixUp,
    MultiCrop,
    MultiCropParams,
    Params,
    RandomAffine,
    RandomCrop,
    RandomErasing,
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
    "CutMix",
    "ErasingParams",
    "MixParams",
    "MixUp",
    "RandomErasing",
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
