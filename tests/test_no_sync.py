"""No device-to-host synchronisation in any forward pass, on every available device.

A host sync happens when the host needs a tensor's *value*: ``.item()``, ``.tolist()``,
``bool(tensor)`` / ``if tensor:``, ``nonzero`` and other ops whose output shape depends on data.
They all reach a handful of ATen ops, which :class:`NoHostReads` refuses. The tests run on:

* ``cpu``;
* ``meta``: tensors without data, so any value read fails by construction, and the CPU-only
  conveniences (the range check of a ``batch_index``) are skipped as on an accelerator;
* ``cuda`` when a GPU is present, also under ``torch.cuda.set_sync_debug_mode("error")``.

Parameters are drawn on the images' device, from a ``torch.Generator`` on that device when one
is given.
"""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from tests._perf_cases import SIZE, cases

# ATen ops that read values on the host or produce data-dependent shapes.
HOST_READS = {
    "_local_scalar_dense",  # .item(), .tolist(), bool(), int(), float() of a tensor
    "item",
    "nonzero",
    "nonzero_static",
    "masked_select",
    "_unique2",
    "unique_dim",
    "unique_consecutive",
    "repeat_interleave",
    "equal",  # torch.equal returns a Python bool
    "is_nonzero",
}


class NoHostReads(TorchDispatchMode):
    """Raise on any ATen op that hands a tensor's value to the host."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        if func._overloadpacket.__name__ in HOST_READS:
            raise RuntimeError(f"host read in a forward pass: aten.{func._overloadpacket.__name__}")
        return func(*args, **(kwargs or {}))


# Tensor methods that hand values to Python; some (tolist, numpy on CPU) read memory without an ATen op.
PYTHON_READS = {
    torch.Tensor.item,
    torch.Tensor.tolist,
    torch.Tensor.numpy,
    torch.Tensor.__bool__,
    torch.Tensor.__int__,
    torch.Tensor.__float__,
    torch.Tensor.__index__,
}


class NoPythonReads(TorchFunctionMode):
    """Raise on any tensor method that returns a tensor's value to Python."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        if func in PYTHON_READS:
            raise RuntimeError(f"host read in a forward pass: Tensor.{func.__name__}")
        return func(*args, **(kwargs or {}))


DEVICES = ["cpu", "meta"] + (["cuda"] if torch.cuda.is_available() else [])
CASES = cases()


def _device_cases() -> list[tuple[str, object]]:
    params = []
    for device in DEVICES:
        for case in CASES:
            # On CPU tensors a batch_index's range is checked by reading two values (free there, no
            # device to wait for); the same calls run on meta and cuda, where the check is skipped.
            if device == "cpu" and case.reads_cpu_values:
                continue
            params.append(pytest.param(device, case, id=f"{device}-{case.name}"))
    return params


@contextlib.contextmanager
def no_host_sync(device: str):
    with NoHostReads(), NoPythonReads():
        if device == "cuda":
            previous = torch.cuda.get_sync_debug_mode()
            torch.cuda.set_sync_debug_mode("error")
            try:
                yield
            finally:
                torch.cuda.set_sync_debug_mode(previous)
        else:
            yield


def _images(device: str, requires_grad: bool = False) -> torch.Tensor:
    images = torch.rand(3, 3, SIZE, SIZE, device="cpu" if device == "meta" else device)
    if device == "meta":
        images = images.to("meta")
    return images.requires_grad_(requires_grad)


@pytest.mark.parametrize("method", ["item", "tolist", "bool", "nonzero", "if"])
@pytest.mark.parametrize("device", DEVICES)
def test_guard_catches_every_kind_of_host_read(device: str, method: str) -> None:
    """The guard itself: each way of reading a value fails under it (else the tests below prove nothing)."""
    x = torch.rand(4, device="cpu" if device == "meta" else device).to(device)
    reads = {
        "item": lambda: x.sum().item(),
        "tolist": lambda: x.tolist(),
        "bool": lambda: bool(x[0] > 0.5),
        "nonzero": lambda: x.nonzero(),
        "if": lambda: 1 if (x > 2).any() else 0,
    }
    with pytest.raises((RuntimeError, NotImplementedError)), no_host_sync(device):
        reads[method]()


@pytest.mark.parametrize(("device", "case"), _device_cases())
def test_forward_has_no_host_sync(device: str, case) -> None:
    module = case.build().to(device)
    images = _images(device)
    extra = case.extra(images)
    with no_host_sync(device):
        out = case.call(module, images, **extra)
    assert out.device.type == device
    assert out.shape[0] > 0


@pytest.mark.parametrize(("device", "case"), [p for p in _device_cases() if p.values[1].learnable])
def test_forward_and_backward_of_learnable_transforms_have_no_host_sync(device: str, case) -> None:
    module = case.build().to(device)
    images = _images(device, requires_grad=True)
    with no_host_sync(device):
        out = case.call(module, images)
        out.sum().backward()
    grads = [p.grad for p in module.parameters()]
    assert grads and all(g is not None and g.device.type == device for g in grads)


@pytest.mark.parametrize(("device", "case"), _device_cases())
def test_params_are_drawn_on_the_images_device(device: str, case) -> None:
    module = case.build().to(device)
    images = _images(device)
    params = case.params(module, images, **case.extra(images))
    tensors = [v for v in vars(params).values() if isinstance(v, torch.Tensor)]
    nested = [
        v
        for sub in vars(params).values()
        if isinstance(sub, (list, dict))
        for item in (sub.values() if isinstance(sub, dict) else sub)
        if item is not None and hasattr(item, "__dict__")
        for v in vars(item).values()
        if isinstance(v, torch.Tensor)
    ]
    assert tensors or nested
    assert all(t.device.type == device for t in tensors + nested)


@pytest.mark.parametrize("device", [d for d in DEVICES if d != "meta"])
def test_a_generator_on_the_images_device_makes_params_reproducible(device: str) -> None:
    random_cases = [c for c in CASES if c.name in {"RandomResizedCrop", "Compose", "RandomAffine", "ZoomCrop"}]
    images = _images(device)
    for case in random_cases:
        module = case.build().to(device)

        def draw(seed: int, case=case, module=module):  # noqa: ANN001
            generator = torch.Generator(device=device).manual_seed(seed)
            return case.replay(module, images, case.params(module, images, generator))

        first, again, other = draw(7), draw(7), draw(8)
        torch.testing.assert_close(first, again, rtol=0, atol=0)
        assert not torch.allclose(first, other), case.name
