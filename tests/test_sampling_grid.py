"""``sampling_grid``: the broadcast replacement of ``affine_grid`` that every warp goes through."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from diffaug import functional as daf
from diffaug.functional.geometry import sampling_grid

shapes = st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9))
seeds = st.integers(0, 2**31 - 1)


def _theta(batch: int, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(batch, 2, 3, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 2


@given(shape=shapes, seed=seeds)
def test_equals_affine_grid(shape, seed) -> None:
    batch, height, width = shape
    theta = _theta(batch, seed)
    expected = F.affine_grid(theta, [batch, 1, height, width], align_corners=False)
    torch.testing.assert_close(sampling_grid(theta, (height, width)), expected, rtol=1e-12, atol=1e-12)
    theta32 = theta.float()
    expected32 = F.affine_grid(theta32, [batch, 1, height, width], align_corners=False)
    torch.testing.assert_close(sampling_grid(theta32, (height, width)), expected32, rtol=1e-5, atol=5e-6)


@given(shape=shapes, seed=seeds)
def test_gradient_equals_affine_grid(shape, seed) -> None:
    batch, height, width = shape
    upstream = torch.randn(batch, height, width, 2, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    grads = []
    for build in (lambda t: sampling_grid(t, (height, width)), lambda t: F.affine_grid(t, [batch, 1, height, width], False)):
        theta = _theta(batch, seed).requires_grad_()
        (build(theta) * upstream).sum().backward()
        grads.append(theta.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-10, atol=1e-10)


def test_gradcheck() -> None:
    theta = _theta(2, 0).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: sampling_grid(t, (3, 5)), (theta,))


def test_warp_of_an_integer_box_is_still_a_slice() -> None:
    """The grid lands on pixel centres: cropping an integer box at its own size copies pixels."""
    images = torch.rand(2, 3, 10, 12, dtype=torch.float64)
    boxes = torch.tensor([[2.0, 1.0, 9.0, 6.0], [0.0, 3.0, 7.0, 8.0]], dtype=torch.float64)
    out = daf.crop(images, boxes, (5, 7))
    torch.testing.assert_close(out[0], images[0, :, 1:6, 2:9], rtol=0, atol=1e-12)
    torch.testing.assert_close(out[1], images[1, :, 3:8, 0:7], rtol=0, atol=1e-12)
