"""Every transform, Compose and MultiCrop under ``torch.compile(fullgraph=True)``.

* compiled output equals eager output for the same params (and the same random draws);
* calling again with new random params, or new boxes for BoxCrop, does not recompile
  (``error_on_recompile`` plus the dynamo graph counter);
* gradients through a compiled learnable pipeline equal eager ones;
* one test generates real code with Inductor.

Most tests use the ``"eager"`` backend (dynamo's graph capture without code generation): the
capture is what fails on host syncs, data-dependent shapes and Python branches on tensor values,
and it keeps the file fast on two CPU cores.
"""

from __future__ import annotations

import pytest
import torch
import torch._dynamo
from hypothesis import given, settings
from hypothesis import strategies as st
from torch._dynamo.utils import counters

import diffaug as da
from diffaug import functional as daf
from tests._perf_cases import OUT, SIZE, cases, covered, exported_transforms

CASES = cases()
IDS = [case.name for case in CASES]
# Transforms whose output does not depend on random draws.
DETERMINISTIC = {"CenterCrop", "Resize", "BoxCrop", "BoxCrop-batch_index", "RGB", "ToDtype"}


def _fresh() -> None:
    torch._dynamo.reset()
    counters.clear()


def _graphs() -> int:
    return counters["stats"]["unique_graphs"]


def _images(batch: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def test_cases_cover_every_exported_transform() -> None:
    missing = exported_transforms() - covered()
    assert not missing, f"add a compile/no-sync case for {sorted(missing)} in tests/_perf_cases.py"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_compiled_forward_equals_eager_and_never_recompiles(case) -> None:
    _fresh()
    module = case.build()
    compiled = torch.compile(module, fullgraph=True, backend="eager")
    images = _images()
    outputs = []
    with torch._dynamo.config.patch(error_on_recompile=True):
        for seed in range(3):
            extra = case.extra(images)  # new boxes per call for BoxCrop
            torch.manual_seed(seed)
            expected = case.call(module, images, **extra)
            torch.manual_seed(seed)
            got = case.call(compiled, images, **extra)
            torch.testing.assert_close(got, expected, rtol=0, atol=0)
            outputs.append(got)
    assert _graphs() == 1
    if case.name not in DETERMINISTIC:
        # New random params each call (not constants baked into the graph).
        assert not torch.equal(outputs[0], outputs[1])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_compiled_transform_replays_params_like_eager(case) -> None:
    _fresh()
    module = case.build()
    replay = torch.compile(module.transform, fullgraph=True, backend="eager")
    images = _images()
    generator = torch.Generator().manual_seed(1)
    with torch._dynamo.config.patch(error_on_recompile=True):
        for _ in range(2):
            params = case.params(module, images, generator, **case.extra(images))
            torch.testing.assert_close(case.output(replay(images, params)), case.replay(module, images, params), rtol=0, atol=0)
    assert _graphs() == 1


# The learnable paths: a crop, fused pipelines (nested Compose) and the policy; aot_eager traces are slow.
GRADIENT_CASES = [c for c in CASES if c.name in {"RandomResizedCrop-learnable", "Compose-nested-learnable", "Policy-resized"}]


@pytest.mark.parametrize("case", GRADIENT_CASES, ids=[c.name for c in GRADIENT_CASES])
def test_compiled_gradients_equal_eager(case) -> None:
    """aot_eager traces forward and backward: gradients reach the learnable ranges as in eager."""
    _fresh()
    module = case.build()
    compiled = torch.compile(module, fullgraph=True, backend="aot_eager")
    images = _images().requires_grad_()
    weights = torch.rand(1, 3, 1, 1)

    def grads(fn) -> list[torch.Tensor]:
        module.zero_grad(set_to_none=True)
        images.grad = None
        torch.manual_seed(5)
        (fn(images) * weights).sum().backward()
        return [images.grad] + [p.grad for p in module.parameters()]

    expected = grads(module)
    got = grads(compiled)
    assert all(g is not None for g in expected)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


_box_state: dict[str, object] = {}


def _compiled_box_crop():
    if "fn" not in _box_state:
        _fresh()
        crop = da.BoxCrop(OUT)
        _box_state["module"] = crop
        _box_state["fn"] = torch.compile(crop, fullgraph=True, backend="eager")
    return _box_state["module"], _box_state["fn"]


@settings(max_examples=15)
@given(
    corners=st.lists(st.tuples(*[st.floats(-8.0, 20.0, width=32)] * 4), min_size=3, max_size=3),
)
def test_box_crop_new_boxes_do_not_recompile(corners) -> None:
    """Any box values (fractional, reversed, outside the image) reuse the one compiled graph."""
    crop, compiled = _compiled_box_crop()
    images = _images()
    boxes = torch.tensor(corners, dtype=torch.float32)
    with torch._dynamo.config.patch(error_on_recompile=True):
        got = compiled(images, boxes)
    torch.testing.assert_close(got, crop(images, boxes), rtol=0, atol=0)
    assert _graphs() == 1


def test_compose_fuses_into_one_grid_sample_in_the_graph() -> None:
    """The compiled three-op pipeline contains exactly one grid_sample (one resample)."""
    _fresh()
    graphs = []

    def backend(gm: torch.fx.GraphModule, example_inputs):  # noqa: ANN001
        graphs.append(gm)
        return gm.forward

    crop = da.RandomResizedCrop(OUT, antialias=False)  # with antialias, one grid_sample per mip level
    pipe = da.Compose([crop, da.RandomHorizontalFlip(), da.RandomAffine(degrees=10)])
    torch.compile(pipe, fullgraph=True, backend=backend)(_images())
    assert len(graphs) == 1
    targets = [node.target for node in graphs[0].graph.nodes if node.op == "call_function"]
    assert sum(1 for t in targets if getattr(t, "__name__", "") == "grid_sample") == 1


def test_inductor_generates_code_equal_to_eager_without_recompiling() -> None:
    """A real Inductor compile of a warp (the op every transform ends in), fed new matrices."""
    _fresh()
    affine = da.RandomAffine(degrees=20, translate=(0.1, 0.1), scale=(0.8, 1.2))
    images = _images(batch=2)

    def warp(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return daf.warp(images, theta, (OUT, OUT))

    compiled = torch.compile(warp, fullgraph=True)
    generator = torch.Generator().manual_seed(3)
    with torch._dynamo.config.patch(error_on_recompile=True):
        for _ in range(2):
            theta = affine.make_params(images, generator=generator).theta
            torch.testing.assert_close(compiled(images, theta), warp(images, theta), rtol=1e-5, atol=1e-5)
    assert _graphs() == 1


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_dynamic_batch_size_compiles(case) -> None:
    """A last, smaller batch makes dynamo mark the batch size dynamic; the draws must accept a symbolic size."""
    _fresh()
    module = case.build()
    compiled = torch.compile(module, fullgraph=True, backend="eager", dynamic=True)
    for batch in (3, 5):
        images = _images(batch)
        out = case.call(compiled, images, **case.extra(images))
        assert out.shape[0] == case.call(module, images, **case.extra(images)).shape[0]
