"""diffaug's transforms: thin modules that sample parameters and call the functional core."""

from diffaug.transforms.base import GeometricTransform, Params
from diffaug.transforms.crop import BoxCrop, CropParams, RandomResizedCrop, ZoomCrop

__all__ = ["BoxCrop", "CropParams", "GeometricTransform", "Params", "RandomResizedCrop", "ZoomCrop"]
