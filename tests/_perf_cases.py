"""Every transform of diffaug, built small, for the compile and host-sync tests.

A case builds a module and says how to call it: ``call(module, images)`` runs the forward pass,
``params(module, images, generator)`` draws params and ``replay(module, images, params)``
applies them. BoxCrop takes boxes (drawn fresh per call: new values, same shapes).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

import diffaug as da
from diffaug.search.policy import Policy, all_ops

SIZE = 12  # input side: small enough for compile tests on two shared cores
OUT = 8


def random_boxes(images: Tensor, count: int, generator: torch.Generator | None = None) -> Tensor:
    """``(count, 4)`` boxes inside and around the images, drawn on their device."""
    height, width = images.shape[-2:]
    scale = torch.tensor([width, height, width, height], dtype=torch.float32, device=images.device)
    corner = torch.rand(count, 2, generator=generator, device=images.device) * 0.7 - 0.1
    extent = 0.2 + torch.rand(count, 2, generator=generator, device=images.device) * 0.6
    return torch.cat([corner, corner + extent], dim=-1) * scale


@dataclasses.dataclass
class Case:
    name: str
    build: Callable[[], nn.Module]
    # Extra keyword arguments of forward / make_params (BoxCrop's boxes), drawn per call.
    extra: Callable[[Tensor], dict[str, Any]] = lambda images: {}
    # The case reads tensor values on the CPU by design (a range check that is free there).
    reads_cpu_values: bool = False
    learnable: bool = False

    # Turns a forward / transform result into one tensor (MultiCrop returns views per group).
    output: Callable[[Any], Tensor] = lambda result: result

    def call(self, module: nn.Module, images: Tensor, **extra: Any) -> Tensor:
        return self.output(module(images, **extra))

    def params(self, module: nn.Module, images: Tensor, generator: torch.Generator | None = None, **extra: Any) -> Any:
        return module.make_params(images, generator=generator, **extra)

    def replay(self, module: nn.Module, images: Tensor, params: Any) -> Tensor:
        return self.output(module.transform(images, params))


class _MixCase(Case):
    """MixUp and CutMix take (images, labels) and return (images, soft labels): the images are compared."""

    def call(self, module: nn.Module, images: Tensor, **extra: Any) -> Tensor:
        classes = torch.arange(images.shape[0], device=images.device) % 3
        labels = torch.eye(3, device=images.device, dtype=images.dtype)[classes]
        return module(images, labels)[0]


def _box_extra(images: Tensor) -> dict[str, Any]:
    return {"boxes": random_boxes(images, images.shape[0])}


def _box_index_extra(images: Tensor) -> dict[str, Any]:
    count = 2 * images.shape[0]
    index = torch.arange(count, device=images.device) % images.shape[0]
    return {"boxes": random_boxes(images, count), "batch_index": index.flip(0)}


def _pipeline() -> nn.Module:
    return da.Compose(
        [da.RandomResizedCrop(OUT), da.RandomHorizontalFlip(), da.RandomAffine(10, (0.1, 0.1), None, None, "bilinear")]
    )


def _nested_pipeline() -> nn.Module:
    inner = da.Compose([da.RandomHorizontalFlip(p=0.5, learnable=True), da.RandomRotation(20, "bilinear", learnable=True)])
    return da.Compose([da.RandomResizedCrop(OUT, learnable=True, p=0.7), inner])


def _colour_pipeline() -> nn.Module:
    """A warp, then colour steps fused into passes (the jitter's clamp ends one before the grayscale)."""
    return da.Compose(
        [
            da.RandomResizedCrop(OUT),
            da.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8, fused=True),
            da.RandomGrayscale(0.5),
            da.Normalize([0.5, 0.5, 0.5], [0.25, 0.25, 0.25]),
        ]
    )


def _views(result: Any) -> Tensor:
    views = result[0] if isinstance(result, tuple) else result
    return torch.cat([v.flatten() for v in views.values()])


def _multicrop() -> nn.Module:
    return da.MultiCrop.dino(global_size=OUT, local_size=OUT // 2, n_local=2)


def cases() -> list[Case]:
    """One case per exported transform (several where options change the code path)."""
    out = [
        Case("RandomResizedCrop", lambda: da.RandomResizedCrop(OUT)),
        Case("RandomResizedCrop-learnable", lambda: da.RandomResizedCrop(OUT, learnable=True, p=0.5), learnable=True),
        Case("ZoomCrop", lambda: da.ZoomCrop(OUT, zoom=(0.8, 3.0))),
        Case("ZoomCrop-learnable", lambda: da.ZoomCrop(OUT, learnable=True, allow_outside=True), learnable=True),
        Case("BoxCrop", lambda: da.BoxCrop(OUT), extra=_box_extra),
        Case("BoxCrop-batch_index", lambda: da.BoxCrop(OUT), extra=_box_index_extra, reads_cpu_values=True),
        Case("RandomHorizontalFlip", lambda: da.RandomHorizontalFlip()),
        Case("RandomVerticalFlip-learnable", lambda: da.RandomVerticalFlip(p=0.5, learnable=True), learnable=True),
        Case("RandomAffine", lambda: da.RandomAffine(15, (0.1, 0.2), (0.8, 1.2), (-5, 5, -3, 3), "bilinear")),
        Case(
            "RandomAffine-learnable",
            lambda: da.RandomAffine(15, None, (0.8, 1.2), None, "bilinear", learnable=True, p=0.8),
            learnable=True,
        ),
        Case("RandomRotation", lambda: da.RandomRotation(30, "bilinear", padding_mode="reflection")),
        Case("RandomRotation-expand-fill", lambda: da.RandomRotation(30, "bilinear", expand=True, fill=(0.2, 0.5, 0.8))),
        Case("CenterCrop", lambda: da.CenterCrop(OUT)),
        Case("RandomCrop", lambda: da.RandomCrop(OUT, padding=2, padding_mode="edge")),
        Case("RandomCrop-reflect", lambda: da.RandomCrop(OUT, padding=3, padding_mode="reflect")),
        Case("Resize", lambda: da.Resize((OUT, OUT + 2))),
        Case("Compose", _pipeline),
        Case("Compose-nested-learnable", _nested_pipeline, learnable=True),
        # Its views gather images with a batch_index, whose range is checked on CPU tensors.
        Case("MultiCrop", _multicrop, output=_views, reads_cpu_values=True),
        Case("Policy", lambda: Policy(num_subpolicies=2, depth=1), learnable=True),
        Case("Policy-resized", lambda: Policy(num_subpolicies=1, depth=1, size=OUT, hard=False), learnable=True),
        Case("Policy-every-kind", lambda: Policy(all_ops(), num_subpolicies=2, depth=2), learnable=True),
        Case("ColorJitter", lambda: da.ColorJitter(0.4, 0.4, 0.4, 0.1)),
        Case(
            "ColorJitter-fused-learnable",
            lambda: da.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8, fused=True, learnable=True),
            learnable=True,
        ),
        Case("RandomPhotometricDistort", lambda: da.RandomPhotometricDistort()),
        Case("RandomPhotometricDistort-fused", lambda: da.RandomPhotometricDistort(fused=True)),
        Case("RandomChannelPermutation", lambda: da.RandomChannelPermutation(p=0.5)),
        Case("Grayscale", lambda: da.Grayscale(3, p=0.5)),
        Case("RandomGrayscale", lambda: da.RandomGrayscale(p=0.5)),
        Case("RGB", lambda: da.RGB()),
        Case("RandomInvert", lambda: da.RandomInvert()),
        Case("Normalize", lambda: da.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225], p=0.5)),
        Case("ToDtype", lambda: da.ToDtype(torch.float64, scale=True)),
        Case("Compose-colour", _colour_pipeline),
        Case("GaussianBlur", lambda: da.GaussianBlur(5, sigma=(0.1, 2.0), p=0.5)),
        Case("GaussianBlur-learnable", lambda: da.GaussianBlur((3, 5), p=0.5, learnable=True), learnable=True),
        Case("GaussianNoise", lambda: da.GaussianNoise(sigma=(0.05, 0.2))),
        Case("GaussianNoise-learnable", lambda: da.GaussianNoise(p=0.5, learnable=True), learnable=True),
        Case("RandomPosterize", lambda: da.RandomPosterize(3)),
        Case("RandomSolarize", lambda: da.RandomSolarize(0.5)),
        Case("RandomSolarize-learnable", lambda: da.RandomSolarize(0.5, learnable=True), learnable=True),
        Case("RandomAdjustSharpness", lambda: da.RandomAdjustSharpness(2.0)),
        Case("RandomAdjustSharpness-learnable", lambda: da.RandomAdjustSharpness(2.0, learnable=True), learnable=True),
        Case("RandomAutocontrast", lambda: da.RandomAutocontrast()),
        Case("RandomEqualize", lambda: da.RandomEqualize()),
        Case("RandomErasing", lambda: da.RandomErasing(p=0.5, value=(0.1, 0.2, 0.3))),
        Case("RandomErasing-learnable", lambda: da.RandomErasing(value="random", learnable=True), learnable=True),
        # Policies: the masked form (grouped=False) is the one that runs on the device and compiles.
        Case("TrivialAugmentWide", lambda: da.TrivialAugmentWide(grouped=False)),
        Case("RandAugment", lambda: da.RandAugment(grouped=False)),
        Case("AutoAugment", lambda: da.AutoAugment(grouped=False)),
        Case("AugMix", lambda: da.AugMix(grouped=False)),
        _MixCase("MixUp", lambda: da.MixUp(num_classes=3, p=0.7)),
        _MixCase("CutMix", lambda: da.CutMix(num_classes=3)),
        _MixCase("CutMix-learnable", lambda: da.CutMix(num_classes=3, p=0.5, learnable=True), learnable=True),
        Case("RandomApply", lambda: da.RandomApply([da.RandomRotation(20, "bilinear"), da.RandomHorizontalFlip()])),
        Case("RandomApply-learnable-blur", lambda: da.RandomApply([da.GaussianBlur(3)], learnable=True), learnable=True),
        Case("RandomChoice", lambda: da.RandomChoice([da.RandomInvert(p=1.0), da.RandomGrayscale(p=1.0)], [2, 1])),
        Case("RandomChoice-mixed", lambda: da.RandomChoice([da.RandomHorizontalFlip(p=1.0), da.RandomSolarize(0.5)])),
        Case("RandomOrder", lambda: da.RandomOrder([da.RandomAffine(10, None, (0.9, 1.1)), da.RandomVerticalFlip()])),
        Case("RandomOrder-mixed", lambda: da.RandomOrder([da.GaussianNoise(sigma=(0.05, 0.1)), da.RandomInvert()])),
    ]
    return out


# The modules a case list must cover: every nn.Module class diffaug exports at top level
# that draws params (has make_params), so a new transform cannot be left out silently.
def exported_transforms() -> set[str]:
    names = set()
    for name in da.__all__:
        obj = getattr(da, name)
        is_module = isinstance(obj, type) and issubclass(obj, nn.Module)
        if is_module and hasattr(obj, "make_params") and not inspect.isabstract(obj):
            names.add(name)
    return names | {"Policy"}


def covered() -> set[str]:
    return {case.name.split("-")[0] for case in cases()}
