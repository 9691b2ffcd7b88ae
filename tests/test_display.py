"""What printing a transform shows: bounds as given, and no autograd warning for learnable ones."""

from __future__ import annotations

import warnings

import pytest
import torch

import diffaug as da
from diffaug.distributions import Range


def _printed(module: torch.nn.Module) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Converting a tensor with requires_grad=True to a scalar" would raise here
        return repr(module)


@pytest.mark.parametrize("learnable", [False, True])
def test_printing_shows_the_bounds_given(learnable: bool) -> None:
    text = _printed(da.RandomResizedCrop(32, scale=(0.08, 1.0), learnable=learnable))
    assert f"(scale): Range([0.08, 1], log=False, learnable={learnable})" in text
    assert f"(ratio): Range([0.75, 1.333], log=True, learnable={learnable})" in text


def test_a_bound_on_the_domain_edge_shows_as_the_edge_and_one_inside_as_itself() -> None:
    # Learnable bounds on an edge are kept 1e-3 of the domain inside it (0.999 for 1.0): shown as the edge.
    edges = Range((0.0, 1.0), domain=(0.0, 1.0), learnable=True)
    low, high = (float(v.detach()) for v in edges.bounds())
    assert 0 < low < 2e-3 and 1 - 2e-3 < high < 1  # what the parameterisation holds
    assert _printed(edges) == "Range([0, 1], log=False, learnable=True)"
    # Bounds farther inside than the margin are shown as they are, to 4 significant digits.
    assert (
        _printed(Range((0.003, 0.9951), domain=(0.0, 1.0), learnable=True)) == "Range([0.003, 0.9951], log=False, learnable=True)"
    )
    assert _printed(Range((-30.0, 30.0), domain=(-180.0, 180.0), learnable=True)) == "Range([-30, 30], log=False, learnable=True)"


def test_printing_after_training_steps_shows_the_moved_bounds() -> None:
    crop = da.RandomResizedCrop(16, scale=(0.2, 0.6), learnable=True)
    optimiser = torch.optim.SGD(crop.parameters(), lr=5.0)
    crop(torch.rand(8, 3, 32, 32)).mean().backward()
    optimiser.step()
    low, high = (float(v.detach()) for v in crop.scale.bounds())
    assert (round(low, 4), round(high, 4)) != (0.2, 0.6)
    assert f"Range([{low:.4g}, {high:.4g}]" in _printed(crop)
