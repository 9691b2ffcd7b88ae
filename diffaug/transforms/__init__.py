"""diffaug's transforms: thin modules that sample parameters and call the functional core."""

from diffaug.transforms.base import GeometricTransform, Params, RandomTransform
from diffaug.transforms.colour import (
    RGB,
    ColorJitter,
    ColourParams,
    ColourTransform,
    Grayscale,
    JitterParams,
    Normalize,
    RandomChannelPermutation,
    RandomGrayscale,
    RandomInvert,
    RandomPhotometricDistort,
    ToDtype,
)
from diffaug.transforms.compose import Compose, ComposeParams
from diffaug.transforms.crop import BoxCrop, CropParams, RandomResizedCrop, ZoomCrop
from diffaug.transforms.geometric import (
    AffineParams,
    CenterCrop,
    RandomAffine,
    RandomCrop,
    RandomHorizontalFlip,
    RandomRotation,
    RandomVerticalFlip,
    Resize,
    RotationParams,
)
from diffaug.transforms.mixing import CutMix, ErasingParams, MixParams, MixUp, RandomErasing
from diffaug.transforms.multicrop import MultiCrop, MultiCropParams

__all__ = [
    "ColourParams",
    "JitterParams",
    "ColourTransform",
    "ColorJitter",
    "RandomPhotometricDistort",
    "RandomChannelPermutation",
    "Grayscale",
    "RandomGrayscale",
    "RGB",
    "RandomInvert",
    "Normalize",
    "ToDtype",
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
]
