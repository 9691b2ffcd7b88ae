"""The pipeline spec parser: literal-only, names restricted to diffaug's transforms, errors that point."""

import json

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import diffaug as da
from diffaug.spec import SpecError, allowed_transforms, build, parse

sizes = st.one_of(st.integers(1, 512), st.tuples(st.integers(1, 512), st.integers(1, 512)))
fractions = st.floats(0.01, 1.0, allow_nan=False).flatmap(lambda a: st.tuples(st.just(a), st.floats(a, 1.0)))
zooms = st.floats(0.25, 8.0).flatmap(lambda a: st.tuples(st.just(a), st.floats(a, 8.0)))


@given(size=sizes, scale=fractions, zoom=zooms, p=st.floats(0.0, 1.0))
def test_grammar_and_json_read_the_same_values(size, scale, zoom, p):
    grammar = f"RandomResizedCrop(size={size!r}, scale={scale!r}, p={p!r}) | ZoomCrop({size!r}, zoom={zoom!r})"
    as_json = json.dumps(
        [{"name": "RandomResizedCrop", "size": size, "scale": scale, "p": p}, {"name": "ZoomCrop", "size": size, "zoom": zoom}]
    )
    read = parse(grammar)
    assert read == [("RandomResizedCrop", (), {"size": size, "scale": scale, "p": p}), ("ZoomCrop", (size,), {"zoom": zoom})]
    from_json = parse(as_json)
    assert from_json[0] == read[0]
    assert from_json[1] == ("ZoomCrop", (), {"size": size, "zoom": zoom})


@given(scale=fractions, ratio=zooms)
def test_built_transform_has_the_arguments_given(scale, ratio):
    built = build(f"RandomResizedCrop(size=(24, 40), scale={scale!r}, ratio={list(ratio)!r})")
    direct = da.RandomResizedCrop((24, 40), scale=scale, ratio=ratio)
    assert type(built) is da.RandomResizedCrop
    assert built.size == (24, 40)
    for name in ("scale", "ratio"):
        got = torch.stack(getattr(built, name).bounds())
        want = torch.stack(getattr(direct, name).bounds())
        assert torch.equal(got, want)


def test_single_transform_replays_the_direct_one():
    images = torch.rand(5, 3, 40, 56)
    built = build("RandomResizedCrop(size=16, scale=(0.3, 0.9))")
    direct = da.RandomResizedCrop(16, scale=(0.3, 0.9))
    torch.manual_seed(3)
    a = built(images)
    torch.manual_seed(3)
    b = direct(images)
    assert torch.equal(a, b)


def test_several_transforms_are_chained_in_order():
    images = torch.rand(4, 3, 64, 64)
    pipeline = build("RandomResizedCrop(size=48) | ZoomCrop(size=(12, 20))")
    assert pipeline(images).shape == (4, 3, 12, 20)
    children = list(pipeline.modules())
    kinds = [type(m) for m in children if isinstance(m, (da.RandomResizedCrop, da.ZoomCrop))]
    assert kinds == [da.RandomResizedCrop, da.ZoomCrop]


def test_bare_name_means_defaults_and_learnable_flag_passes_through():
    with pytest.raises(SpecError, match="missing a required argument: 'size'"):
        build("ZoomCrop")
    learnable = build("ZoomCrop(size=8, learnable=True)")
    assert any(p.requires_grad for p in learnable.parameters())


@pytest.mark.parametrize(
    "spec",
    [
        "__import__('os').system('echo pwned')",
        "RandomResizedCrop(size=__import__('os').getpid())",
        "RandomResizedCrop(size=open('x').read())",
        "RandomResizedCrop(size=(lambda: 3)())",
        "RandomResizedCrop(size=[i for i in range(2)])",
        "RandomResizedCrop(size=f'{1}')",
        "RandomResizedCrop(size=n)",
        "da.RandomResizedCrop(size=8)",
        "RandomResizedCrop(**{'size': 8})",
        "RandomResizedCrop.__init__",
        "Compose([RandomResizedCrop(8)])",
        "GeometricTransform()",
        "BoxCrop(8)",
        "MultiCrop({'global': (2, 'RandomResizedCrop(8)')})",
        "torch.nn.Linear(2, 2)",
    ],
)
def test_anything_but_literal_calls_of_exported_transforms_is_refused(spec):
    with pytest.raises(SpecError, match="part 1"):
        build(spec)


@given(text=st.text(max_size=60))
def test_arbitrary_text_gives_a_spec_error_or_a_pipeline(text):
    try:
        pipeline = build(text)
    except SpecError:
        return
    assert isinstance(pipeline, torch.nn.Module)


def test_unknown_name_names_the_part_and_lists_the_allowed():
    with pytest.raises(SpecError) as error:
        build("RandomResizedCrop(size=8) | ZoomCrop(size=8) | NoSuchRotate(30)")
    message = str(error.value)
    assert "part 3 'NoSuchRotate(30)'" in message
    for name in allowed_transforms():
        assert name in message


def test_unknown_argument_lists_the_arguments():
    with pytest.raises(SpecError, match=r"part 2 .*no argument 'zom'.*size, zoom, allow_outside"):
        build("RandomResizedCrop(8) | ZoomCrop(size=8, zom=(1, 2))")


def test_value_rejected_by_the_transform_names_the_part():
    with pytest.raises(SpecError, match=r"part 1 'RandomResizedCrop\(size=8, scale=\(1.0, 0.5\)\)': scale must be ordered"):
        build("RandomResizedCrop(size=8, scale=(1.0, 0.5))")


def test_syntax_error_points_at_the_column():
    with pytest.raises(SpecError) as error:
        build("RandomResizedCrop(size=8) || ZoomCrop(8)")
    lines = str(error.value).splitlines()
    assert lines[0].startswith("cannot parse the spec at column ")
    column = int(lines[0].split("column ")[1].rstrip(":"))
    caret = lines[2].index("^") - 4
    assert caret == column - 1
    assert lines[1].strip()[column - 1] == "|"


@pytest.mark.parametrize("spec", ["", "   ", "[1, 2]", '{"size": 8}', '[{"name": 3}]', "[{"])
def test_empty_and_malformed_json_are_refused(spec):
    with pytest.raises(SpecError):
        parse(spec)


def test_allowed_transforms_are_exported_modules_that_take_images_alone():
    allowed = allowed_transforms()
    assert {"RandomResizedCrop", "ZoomCrop"} <= set(allowed)
    assert "BoxCrop" not in allowed and "GeometricTransform" not in allowed
    for name, cls in allowed.items():
        assert getattr(da, name) is cls
        assert issubclass(cls, torch.nn.Module)
