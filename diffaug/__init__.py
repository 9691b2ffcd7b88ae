"""diffaug: torchvision-style augmentations for PyTorch, differentiable in their own parameters.

Examples:
    >>> import torch, diffaug as da
    >>> crop = da.RandomResizedCrop(32)
    >>> crop(torch.rand(8, 3, 64, 64)).shape
    torch.Size([8, 3, 32, 32])
"""

from diffaug import distributions, functional, transforms

# Every public transform under diffaug's own name; diffaug.transforms.__all__ is their one list.
from diffaug.transforms import *  # noqa: F403

__version__ = "0.1.0"

# A form the typing spec lists for re-exports: type checkers resolve ``diffaug.X`` and ``from diffaug import X``.
__all__ = ["distributions", "functional"]
__all__ += transforms.__all__
