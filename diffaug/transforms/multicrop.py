"""Multi-crop: several views per image (DINO / SwAV style), one batched warp per group of views.

A group is a pipeline and a number of views. Its params are drawn for ``V * B`` outputs at once
(``batch_index`` names each output's image, views major: output ``v * B + b`` is view ``v`` of
image ``b``), and the images are warped once per group: no loop over views or samples.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from diffaug.functional import _checks
from diffaug.transforms.compose import Compose, ComposeParams
from diffaug.transforms.crop import RandomResizedCrop
from diffaug.transforms.geometric import RandomHorizontalFlip

__all__ = ["MultiCrop", "MultiCropParams"]


@dataclasses.dataclass
class MultiCropParams:
    """Params of every group: ``groups[name]`` is a :class:`ComposeParams` for ``V * B`` outputs.

    Each group's ``batch_index`` is ``(V * B,)`` and its ``matrix`` ``(V * B, 3, 3)``, views major.

    Examples:
        >>> import torch, diffaug as da
        >>> mc = da.MultiCrop({"views": (3, da.RandomResizedCrop(8))})
        >>> params = mc.make_params(torch.rand(2, 3, 16, 16))
        >>> params.views, params.groups["views"].batch_index.tolist()
        ({'views': 3}, [0, 1, 0, 1, 0, 1])
    """

    groups: dict[str, ComposeParams]
    views: dict[str, int]
    batched: bool = True


class MultiCrop(nn.Module):
    """Several augmented views of each image, grouped by pipeline, one warp per group.

    Args:
        groups: ``{name: (views, pipeline)}``: each pipeline (a transform or a
            :class:`diffaug.Compose`) is drawn independently ``views`` times per image.

    Returns (``forward``):
        ``(views, params)``: ``views[name]`` is ``(V, B, C, h, w)`` (``(V, C, h, w)`` for a single
        image), ``params`` a :class:`MultiCropParams` for replay with :meth:`transform`.

    Examples:
        >>> import torch, diffaug as da
        >>> mc = da.MultiCrop.dino(global_size=32, local_size=16, n_local=4)
        >>> views, params = mc(torch.rand(8, 3, 64, 64))
        >>> views["global"].shape, views["local"].shape
        (torch.Size([2, 8, 3, 32, 32]), torch.Size([4, 8, 3, 16, 16]))
        >>> params.groups["local"].matrix.shape
        torch.Size([32, 3, 3])
    """

    def __init__(self, groups: Mapping[str, tuple[int, nn.Module]]) -> None:
        super().__init__()
        if not isinstance(groups, Mapping) or not groups:
            raise TypeError("groups must be a non-empty mapping {name: (views, pipeline)}")
        pipelines: dict[str, nn.Module] = {}
        self.views: dict[str, int] = {}
        for name, entry in groups.items():
            if not isinstance(entry, Sequence) or len(entry) != 2:
                raise TypeError(f"groups[{name!r}] must be a pair (views, pipeline), got {entry!r}")
            count, pipeline = entry
            if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                raise ValueError(f"groups[{name!r}] views must be an int >= 1, got {count!r}")
            if not isinstance(pipeline, nn.Module):
                raise TypeError(f"groups[{name!r}] pipeline must be an nn.Module, got {type(pipeline).__name__}")
            pipelines[name] = pipeline if isinstance(pipeline, Compose) else Compose([pipeline])
            self.views[name] = count
        self.groups = nn.ModuleDict(pipelines)

    @classmethod
    def dino(
        cls,
        global_size: int | Sequence[int] = 224,
        local_size: int | Sequence[int] = 96,
        n_global: int = 2,
        n_local: int = 8,
        global_scale: tuple[float, float] = (0.4, 1.0),
        local_scale: tuple[float, float] = (0.05, 0.4),
        flip_p: float = 0.5,
        learnable: bool = False,
        antialias: bool | None = None,
    ) -> MultiCrop:
        """DINO's geometric views: ``n_global`` large and ``n_local`` small random resized crops, each flipped with ``flip_p``.

        ``antialias`` low-pass filters crops that shrink: ``None`` (the default) is on, as for
        every transform (see :class:`~diffaug.transforms.base.GeometricTransform`).
        Colour augmentations are not geometric: add them to the group pipelines (they run on
        each group's output after its single warp).
        """
        return cls(
            {
                "global": (
                    n_global,
                    Compose(
                        [
                            RandomResizedCrop(global_size, scale=global_scale, learnable=learnable, antialias=antialias),
                            RandomHorizontalFlip(flip_p),
                        ]
                    ),
                ),
                "local": (
                    n_local,
                    Compose(
                        [
                            RandomResizedCrop(local_size, scale=local_scale, learnable=learnable, antialias=antialias),
                            RandomHorizontalFlip(flip_p),
                        ]
                    ),
                ),
            }
        )

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> MultiCropParams:
        """Draw every view's params: ``V * B`` per group, one call per group."""
        _checks.check_images(images)
        batched = images.ndim == 4
        batch = images.shape[0] if batched else 1
        stand_in = images if batched else images.unsqueeze(0)
        index = torch.arange(batch, device=images.device)
        groups = {
            name: _compose(pipeline).make_params(stand_in, generator=generator, batch_index=index.repeat(self.views[name]))
            for name, pipeline in self.groups.items()
        }
        return MultiCropParams(groups=groups, views=dict(self.views), batched=batched)

    def transform(self, images: Tensor, params: MultiCropParams) -> dict[str, Tensor]:
        """The views of ``params``: ``{name: (V, B, C, h, w)}`` (``(V, C, h, w)`` for one image)."""
        _checks.check_images(images)
        batch = images if images.ndim == 4 else images.unsqueeze(0)
        out = {}
        for name, pipeline in self.groups.items():
            views = _compose(pipeline).transform(batch, params.groups[name]).unflatten(0, (params.views[name], batch.shape[0]))
            out[name] = views if images.ndim == 4 else views.squeeze(1)
        return out

    def forward(self, images: Tensor, generator: torch.Generator | None = None) -> tuple[dict[str, Tensor], MultiCropParams]:
        params = self.make_params(images, generator=generator)
        return self.transform(images, params), params


def _compose(module: nn.Module) -> Compose:
    assert isinstance(module, Compose)  # every group is wrapped in a Compose at construction
    return module
