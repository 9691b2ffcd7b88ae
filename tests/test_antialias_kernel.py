"""The compiled CPU kernel of the antialiased warp against the pure PyTorch pyramid it replaces.

``antialias=True`` on the CPU, with no gradient needed, runs ``_cpu_kernels.cpp``; with
gradients (or under compile, or off the CPU) it runs the pyramid of ``antialias.py``. The two
must agree to rounding on every warp, padding and shape, and the dispatch must pick the right one.
"""

from __future__ import annotations

import math
import warnings

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import given, settings

import diffaug as da
from diffaug import functional as daf
from diffaug.functional import _cpu_kernels


def test_the_kernel_builds_on_this_machine():
    # The fast path must not be silently off where the suite runs: a failed build only warns.
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert _cpu_kernels.kernel() is not None


@st.composite
def warps(draw: st.DrawFn, dtype: torch.dtype = torch.float64):
    """Images and affine thetas whose shrink ranges from a zoom-in to a 10x shrink, per sample."""
    batch, channels = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    height, width = draw(st.integers(3, 48)), draw(st.integers(3, 48))
    out = (draw(st.integers(1, 20)), draw(st.integers(1, 20)))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, channels, height, width, generator=g, dtype=dtype)
    angle = (torch.rand(batch, generator=g, dtype=torch.float64) - 0.5) * 2 * math.pi * draw(st.floats(0.0, 1.0))
    # Output pixel footprint in input pixels, per sample: log-uniform in [0.3, 10].
    span = torch.exp(torch.empty(batch, 2, dtype=torch.float64).uniform_(math.log(0.3), math.log(10.0), generator=g))
    scale = span * torch.tensor([out[1] / width, out[0] / height], dtype=torch.float64)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(batch, 2, 3, dtype=torch.float64)
    theta[:, 0, 0], theta[:, 0, 1] = cos * scale[:, 0], -sin * scale[:, 1]
    theta[:, 1, 0], theta[:, 1, 1] = sin * scale[:, 0], cos * scale[:, 1]
    theta[:, :, 2] = torch.rand(batch, 2, generator=g, dtype=torch.float64) * 1.6 - 0.8
    return images, theta.to(dtype), out


def _both(images, theta, out, **kwargs):
    kernel = daf.warp(images, theta, out, antialias=True, **kwargs)
    with _cpu_kernels.disabled():
        pyramid = daf.warp(images, theta, out, antialias=True, **kwargs)
    return kernel, pyramid


@settings(max_examples=60, deadline=None)
@given(warps(), st.sampled_from(["zeros", "border", "reflect"]), st.floats(-1.0, 2.0))
def test_kernel_equals_the_pyramid_in_float64(case, padding_mode, fill):
    images, theta, out = case
    extra = {"fill": fill} if padding_mode == "zeros" else {}
    kernel, pyramid = _both(images, theta, out, padding_mode=padding_mode, **extra)
    torch.testing.assert_close(kernel, pyramid, rtol=0, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(warps(torch.float32))
def test_kernel_equals_the_pyramid_in_float32(case):
    images, theta, out = case
    kernel, pyramid = _both(images, theta, out)
    torch.testing.assert_close(kernel, pyramid, rtol=0, atol=2e-5)


def test_random_resized_crops_of_the_cost_case_shape():
    # The benchmark's case, scaled down: RandomResizedCrop boxes, 2x input -> output.
    g = torch.Generator().manual_seed(3)
    images = torch.rand(16, 3, 96, 96, generator=g)
    theta = da.RandomResizedCrop(48).make_params(images, generator=g).theta
    kernel, pyramid = _both(images, theta, (48, 48))
    torch.testing.assert_close(kernel, pyramid, rtol=0, atol=2e-5)
    assert not torch.equal(kernel, daf.warp(images, theta, (48, 48)))  # some crops were filtered


def test_samples_that_do_not_shrink_are_the_plain_warp_bit_for_bit():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 40, 40, generator=g)
    boxes = torch.tensor([[0.0, 0.0, 40.0, 40.0], [5.0, 7.0, 17.0, 19.0]])  # 4x shrink, then 12 -> 10
    out = daf.crop(images, boxes, 10, antialias=True)
    plain = daf.crop(images, boxes, 10)
    assert torch.equal(out[1], plain[1])
    assert not torch.equal(out[0], plain[0])


class _Spy:
    def __init__(self):
        self.calls = 0
        self.module = _cpu_kernels.kernel()

    def __call__(self):
        self.calls += 1
        return self.module


@pytest.mark.parametrize("needs_grad", [False, True])
def test_the_kernel_serves_calls_with_and_without_gradients(monkeypatch, needs_grad):
    spy = _Spy()
    monkeypatch.setattr(_cpu_kernels, "kernel", spy)
    images = torch.rand(2, 3, 32, 32, requires_grad=needs_grad)
    out = daf.crop(images, torch.tensor([[0.0, 0.0, 32.0, 32.0]] * 2), 8, antialias=True)
    assert spy.calls == 1
    assert out.requires_grad is needs_grad
    if needs_grad:  # the kernel's own backward, not the pyramid's graph
        assert "warp_levels" in type(out.grad_fn).__name__


@settings(max_examples=40, deadline=None)
@given(warps(), st.sampled_from(["zeros", "border", "reflect"]), st.floats(-1.0, 2.0))
def test_kernel_gradients_equal_the_pyramids_in_float64(case, padding_mode, fill):
    """Gradients to the images and to theta (through the grid and the amount of filtering)."""
    images, theta, out = case
    extra = {"fill": fill} if padding_mode == "zeros" else {}
    weights = torch.rand(images.shape[0], images.shape[1], *out, dtype=torch.float64)

    def gradients(pyramid: bool):
        x, t = images.clone().requires_grad_(), theta.clone().requires_grad_()
        if pyramid:
            with _cpu_kernels.disabled():
                result = daf.warp(x, t, out, antialias=True, padding_mode=padding_mode, **extra)
        else:
            result = daf.warp(x, t, out, antialias=True, padding_mode=padding_mode, **extra)
        (result * weights).sum().backward()
        return result.detach(), x.grad, t.grad

    for got, expected in zip(gradients(False), gradients(True), strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("padding_mode", ["zeros", "border"])
def test_gradcheck_through_the_kernel(padding_mode):
    g = torch.Generator().manual_seed(4)
    images = torch.rand(2, 2, 17, 15, generator=g, dtype=torch.float64, requires_grad=True)
    # Shrinks of about 2.3x and 3.4x: two pyramid levels blended per sample, partly outside the image.
    theta = torch.tensor([[[0.95, 0.2, 0.1], [-0.15, 0.9, -0.05]], [[1.3, 0.0, 0.3], [0.1, 1.4, 0.0]]], dtype=torch.float64)
    theta.requires_grad_()

    def warp(x, t):
        assert _cpu_kernels.kernel() is not None
        return daf.warp(x, t, (5, 4), antialias=True, padding_mode=padding_mode)

    assert "warp_levels" in type(warp(images, theta).grad_fn).__name__
    assert torch.autograd.gradcheck(warp, (images, theta), eps=1e-6, atol=1e-6)


def test_no_kernel_under_no_grad_is_still_the_kernel(monkeypatch):
    spy = _Spy()
    monkeypatch.setattr(_cpu_kernels, "kernel", spy)
    images = torch.rand(2, 3, 32, 32, requires_grad=True)
    with torch.no_grad():
        daf.crop(images, torch.tensor([[0.0, 0.0, 32.0, 32.0]] * 2), 8, antialias=True)
    assert spy.calls == 1


@pytest.mark.parametrize("case", ["channels_last", "bicubic", "reflection", "per_axis"])
def test_what_the_kernel_does_not_cover_goes_to_the_pyramid(monkeypatch, case):
    spy = _Spy()
    monkeypatch.setattr(_cpu_kernels, "kernel", spy)
    images = torch.rand(2, 3, 32, 32)
    theta = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]).expand(2, 2, 3)
    if case == "channels_last":
        daf.warp(images.contiguous(memory_format=torch.channels_last), theta, 8, antialias=True)
    elif case == "bicubic":
        daf.warp(images, theta, 8, mode="bicubic", antialias=True)
    elif case == "reflection":
        daf.warp(images, theta, 8, padding_mode="reflection", antialias=True)
    else:
        from diffaug.functional.antialias import antialiased_sample

        antialiased_sample(images, theta, (8, 8), per_axis=True)
    assert spy.calls == 0


def test_a_failed_build_warns_once_and_falls_back_to_the_pyramid(monkeypatch):
    from torch.utils import cpp_extension

    def no_compiler(*args, **kwargs):
        raise OSError("no compiler here")

    _cpu_kernels.kernel()  # loaded first, so that the teardown puts the real module back
    monkeypatch.setattr(cpp_extension, "load", no_compiler)
    monkeypatch.delitem(_cpu_kernels._state, "module", raising=False)
    images = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    theta = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=torch.float64).expand(2, 2, 3)
    with pytest.warns(RuntimeWarning, match="no compiler here"):
        out = daf.warp(images, theta, 8, antialias=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = daf.warp(images, theta, 8, antialias=True)  # no second warning
    with _cpu_kernels.disabled():
        pyramid = daf.warp(images, theta, 8, antialias=True)
    assert torch.equal(out, pyramid) and torch.equal(again, pyramid)

    # With gradients the same custom ops run their fallback both ways (autograd through the pyramid).
    def gradients(disable: bool):
        x, t = images.clone().requires_grad_(), (theta * 2).requires_grad_()  # 2x shrink: levels blended
        with _cpu_kernels.disabled() if disable else warnings.catch_warnings():
            result = daf.warp(x, t, 8, antialias=True)
            result.pow(2).sum().backward()
        return result.detach(), x.grad, t.grad

    for got, expected in zip(gradients(False), gradients(True), strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


def test_the_result_does_not_depend_on_the_number_of_threads():
    g = torch.Generator().manual_seed(1)
    images = torch.rand(12, 3, 64, 64, generator=g)
    theta = da.RandomResizedCrop(24).make_params(images, generator=g).theta
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = daf.warp(images, theta, 24, antialias=True)
        torch.set_num_threads(2)
        two = daf.warp(images, theta, 24, antialias=True)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two)


@pytest.mark.parametrize("padding_mode", ["zeros", "border"])
@pytest.mark.parametrize("shift", [-6.0, -1.1, 1.1, 6.0])
def test_grids_partly_or_wholly_outside_the_image(padding_mode, shift):
    g = torch.Generator().manual_seed(2)
    images = torch.rand(3, 2, 30, 26, generator=g, dtype=torch.float64)
    theta = torch.tensor(
        [[[4.0, 0.0, shift], [0.0, 3.0, 0.3]], [[3.0, 0.5, 0.2], [0.0, 5.0, shift]], [[6.0, 0.0, 0.0], [0.0, 6.0, 0.0]]]
    )
    kernel, pyramid = _both(images, theta.double(), (7, 6), padding_mode=padding_mode)
    torch.testing.assert_close(kernel, pyramid, rtol=0, atol=1e-12)


def test_a_sample_with_non_finite_coordinates_keeps_the_plain_warp():
    images = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    theta = torch.tensor([[[4.0, 0.0, float("nan")], [0.0, 4.0, 0.0]], [[4.0, 0.0, 0.0], [0.0, 4.0, 0.0]]], dtype=torch.float64)
    out = daf.warp(images, theta, 8, antialias=True)
    with _cpu_kernels.disabled():
        pyramid = daf.warp(images, theta, 8, antialias=True)
    assert torch.equal(out[0].isnan(), daf.warp(images, theta, 8)[0].isnan())  # as grid_sample left it
    torch.testing.assert_close(out[1], pyramid[1], rtol=0, atol=1e-12)


def test_a_lock_left_by_a_killed_build_is_cleared_but_a_fresh_one_is_kept(tmp_path):
    # Older torch waits forever on a build directory's lock file; a build killed midway leaves one.
    import os
    import time

    lock = tmp_path / "lock"
    lock.touch()
    _cpu_kernels._clear_stale_lock(tmp_path)
    assert lock.exists()  # another process may be building right now
    old = time.time() - 2 * _cpu_kernels._STALE_LOCK_SECONDS
    os.utime(lock, (old, old))
    _cpu_kernels._clear_stale_lock(tmp_path)
    assert not lock.exists()
    _cpu_kernels._clear_stale_lock(tmp_path)  # nothing to clear: no error


# --------------------------------------------------------------------------- the build
def test_the_build_name_is_keyed_by_source_flags_and_torch_version():
    name = _cpu_kernels.build_name
    base = name(b"source", ["-O3", "-fopenmp"], "2.14.1")
    assert base == name(b"source", ("-O3", "-fopenmp"), "2.14.1")  # stable, whatever the sequence type
    others = [
        name(b"source!", ["-O3", "-fopenmp"], "2.14.1"),
        name(b"source", ["-O2", "-fopenmp"], "2.14.1"),
        name(b"source", ["-O3"], "2.14.1"),
        name(b"source", ["-O3", "-fopenmp"], "2.14.2"),
        name(b"source-O3", ["", "-fopenmp"], "2.14.1"),  # the parts are separated, not concatenated
    ]
    assert len({base, *others}) == len(others) + 1
    assert all(n.startswith("diffaug_cpu_kernels_") and n.isidentifier() for n in [base, *others])
    assert "-march=native" not in _cpu_kernels._CFLAGS  # portable: a shared cache may serve older CPUs


_LOAD = """
import torch
from diffaug.functional import _cpu_kernels, warp

module = _cpu_kernels.kernel()
images = torch.rand(2, 3, 32, 32, dtype=torch.float64)
theta = torch.eye(2, 3, dtype=torch.float64).expand(2, 2, 3)
out = warp(images, theta, 8, antialias=True)
with _cpu_kernels.disabled():
    assert (out - warp(images, theta, 8, antialias=True)).abs().max() < 1e-12
print(module.__file__)
"""


def _load_in(directory) -> tuple[str, list[str]]:
    """Load the kernel in a fresh process whose build cache is ``directory``: (its file, stderr lines)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, TORCH_EXTENSIONS_DIR=str(directory))
    done = subprocess.run([sys.executable, "-c", _LOAD], env=env, capture_output=True, text=True, timeout=600, check=True)
    return done.stdout.strip().splitlines()[-1], done.stderr.strip().splitlines()


def test_two_build_caches_coexist_and_a_second_load_does_not_rebuild(tmp_path):
    """One build into a fresh cache: one line on stderr says it compiles (and no CUDA notice on a
    machine without a GPU); loading it again rebuilds nothing and says nothing; the kernel of the
    suite's own cache is still there and loadable. The build compiles a copy of the source kept in
    its directory, so a second checkout of the same source finds the same build."""
    from pathlib import Path

    own = Path(_cpu_kernels.kernel().__file__)
    first, messages = _load_in(tmp_path)
    built = Path(first)
    assert tmp_path in built.parents and built.name == own.name and built != own  # the same name, elsewhere
    assert len(messages) == 1 and "compiling" in messages[0], messages
    stamp = built.stat().st_mtime_ns
    ninja = (built.parent / "build.ninja").read_text()
    assert str(built.parent / "_cpu_kernels.cpp") in ninja and str(_cpu_kernels._SOURCE) not in ninja

    again, messages = _load_in(tmp_path)
    assert again == first and messages == [] and built.stat().st_mtime_ns == stamp
    assert own.is_file() and _cpu_kernels.kernel() is not None
