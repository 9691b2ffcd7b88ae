"""MultiCrop: view groups in one warp each, consistent with the group pipeline applied per view."""

from __future__ import annotations

import pytest
import torch

import diffaug as da
from tests._counting import CountGridSample


def test_dino_shapes_and_one_warp_per_group():
    mc = da.MultiCrop.dino(global_size=32, local_size=16, n_global=2, n_local=6, antialias=False)
    images = torch.rand(5, 3, 48, 40)
    with CountGridSample() as counter:
        views, params = mc(images)
    assert counter.count == 2
    assert views["global"].shape == (2, 5, 3, 32, 32) and views["local"].shape == (6, 5, 3, 16, 16)
    assert params.groups["local"].matrix.shape == (30, 3, 3)
    assert torch.equal(params.groups["local"].batch_index, torch.arange(5).repeat(6))


def test_each_view_equals_its_pipeline_on_its_image():
    crop = da.RandomResizedCrop(12, scale=(0.05, 0.6), antialias=True)
    pipe = da.Compose([crop, da.RandomHorizontalFlip(), da.RandomAffine(15)])
    mc = da.MultiCrop({"views": (3, pipe)})
    images = torch.rand(4, 2, 24, 24, dtype=torch.float64)
    views, params = mc(images, generator=torch.Generator().manual_seed(0))
    group = params.groups["views"]
    theta = group.theta.view(3, 4, 2, 3)
    for v in range(3):
        for b in range(4):
            # The crop asks for antialiasing: each view is filtered by its own shrink.
            expected = da.functional.warp(images[b], theta[v, b], (12, 12), antialias=True)
            assert torch.allclose(views["views"][v, b], expected, atol=1e-12)
    # Views differ from each other (independent draws per view and per image).
    assert not torch.allclose(views["views"][0], views["views"][1])


def test_replay_single_image_and_gradients():
    mc = da.MultiCrop(
        {"big": (2, da.RandomResizedCrop(16, learnable=True)), "small": (3, da.RandomResizedCrop(8, learnable=True))}
    )
    images = torch.rand(2, 3, 32, 32)
    params = mc.make_params(images, generator=torch.Generator().manual_seed(1))
    first = mc.transform(images, params)
    assert all(torch.equal(first[k], mc.transform(images, params)[k]) for k in first)
    (first["big"].sum() + first["small"].sum()).backward()
    assert all(p.grad is not None for p in mc.parameters())
    single, _ = mc(images[0])
    assert single["big"].shape == (2, 3, 16, 16) and single["small"].shape == (3, 3, 8, 8)


def test_non_geometric_step_after_the_warp():
    class Negate(torch.nn.Module):
        def forward(self, images):
            return -images

    mc = da.MultiCrop({"v": (2, da.Compose([da.RandomResizedCrop(8), Negate()]))})
    images = torch.rand(3, 1, 16, 16)
    views, _ = mc(images)
    assert views["v"].shape == (2, 3, 1, 8, 8) and (views["v"] <= 0).all()


def test_bad_groups():
    with pytest.raises(TypeError, match="mapping"):
        da.MultiCrop([])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="views"):
        da.MultiCrop({"a": (0, da.RandomResizedCrop(8))})
    with pytest.raises(TypeError, match="pair"):
        da.MultiCrop({"a": da.RandomResizedCrop(8)})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="nn.Module"):
        da.MultiCrop({"a": (2, "crop")})  # type: ignore[dict-item]
