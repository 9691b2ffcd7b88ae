"""Pipelines written as text, parsed safely: the ``--pipeline`` argument of ``diffaug preview``.

Two forms are accepted.

A small grammar, transform calls joined by ``|`` (applied left to right)::

    RandomResizedCrop(size=128, scale=(0.2, 1.0)) | RandomHorizontalFlip(p=0.5)

JSON, a list of objects naming a transform under ``"name"``, its arguments beside it::

    [{"name": "RandomResizedCrop", "size": 128, "scale": [0.2, 1.0]}, {"name": "RandomHorizontalFlip"}]

Nothing is evaluated: the text is read with :func:`ast.parse` and each argument with
:func:`ast.literal_eval` (numbers, strings, booleans, ``None``, tuples, lists and dicts of
them); names are looked up among the transform classes :mod:`diffaug` exports, nothing else.
A bad spec raises :class:`SpecError` naming the part that is wrong and what is allowed.
"""

from __future__ import annotations

import ast
import inspect
import json
from typing import Any

from torch import Tensor, nn

__all__ = ["SpecError", "TransformSpec", "allowed_transforms", "build", "parse"]

TransformSpec = tuple[str, tuple[Any, ...], dict[str, Any]]


class SpecError(ValueError):
    """A pipeline spec that cannot be parsed or built; the message names the wrong part."""


def allowed_transforms() -> dict[str, type[nn.Module]]:
    """The transforms a spec may name: classes exported by :mod:`diffaug` that take images alone.

    Excluded: base classes (abstract ``make_params``), ``Compose`` (a spec already composes),
    transforms whose ``forward`` needs more than the images (``BoxCrop`` needs boxes) and those
    that return something else than images (``MultiCrop``).

    Examples:
        >>> "RandomResizedCrop" in allowed_transforms(), "BoxCrop" in allowed_transforms()
        (True, False)
    """
    import diffaug

    found: dict[str, type[nn.Module]] = {}
    for name in getattr(diffaug, "__all__", ()):
        obj = getattr(diffaug, name, None)
        if not (inspect.isclass(obj) and issubclass(obj, nn.Module)) or name == "Compose" or inspect.isabstract(obj):
            continue
        if not _takes_images_only(obj.forward):
            continue
        found[name] = obj
    return dict(sorted(found.items()))


def _takes_images_only(forward: Any) -> bool:
    """``forward(self, images, ...) -> Tensor`` where every argument after ``images`` has a default."""
    try:
        signature = inspect.signature(forward)
    except (TypeError, ValueError):
        return False
    # Any: the call convention of diffaug.transforms.targets (images alone in, images out).
    if signature.return_annotation not in (inspect.Signature.empty, "Tensor", Tensor, "Any", Any):
        return False  # e.g. MultiCrop returns views and params, not images
    parameters = list(signature.parameters.values())[1:]
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if not positional:
        return False
    rest = parameters[parameters.index(positional[0]) + 1 :]
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in rest)


def parse(spec: str) -> list[TransformSpec]:
    """Read a spec (grammar or JSON) into ``[(name, args, kwargs), ...]`` without building anything.

    Raises:
        SpecError: the text is not a spec; the message quotes the wrong part.

    Examples:
        >>> parse("RandomResizedCrop(64, scale=(0.5, 1.0)) | ZoomCrop(size=64)")
        [('RandomResizedCrop', (64,), {'scale': (0.5, 1.0)}), ('ZoomCrop', (), {'size': 64})]
        >>> parse('[{"name": "ZoomCrop", "size": [32, 48]}]')
        [('ZoomCrop', (), {'size': (32, 48)})]
    """
    if not isinstance(spec, str):
        raise SpecError(f"a pipeline spec must be a string, got {type(spec).__name__}")
    text = spec.strip()
    if not text:
        raise SpecError("the pipeline spec is empty; write e.g. 'RandomResizedCrop(size=128) | ZoomCrop(size=128)'")
    if text[0] in "[{":
        return _parse_json(text)
    return _parse_grammar(text)


def _parse_grammar(text: str) -> list[TransformSpec]:
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as error:
        column = (error.offset or 1) - 1
        raise SpecError(
            f"cannot parse the spec at column {column + 1}:\n    {text}\n    {' ' * column}^\n"
            "expected transform calls joined by '|', e.g. 'RandomResizedCrop(size=128, scale=(0.2, 1.0)) | ZoomCrop(size=128)'"
        ) from None
    calls: list[ast.expr] = []
    _flatten(tree.body, calls)
    return [_read_call(node, text, index + 1) for index, node in enumerate(calls)]


def _flatten(node: ast.expr, out: list[ast.expr]) -> None:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        _flatten(node.left, out)
        _flatten(node.right, out)
    else:
        out.append(node)


def _read_call(node: ast.expr, text: str, index: int) -> TransformSpec:
    part = ast.get_source_segment(text, node) or ast.dump(node)
    where = f"part {index} {part!r}"
    if isinstance(node, ast.Name):
        return node.id, (), {}  # a bare name is the transform with its defaults
    if not isinstance(node, ast.Call):
        raise SpecError(f"{where}: expected a transform call such as 'ZoomCrop(size=128)'; parts are joined only by '|'")
    if not isinstance(node.func, ast.Name):
        raise SpecError(
            f"{where}: the transform must be a plain name such as 'RandomResizedCrop', got {ast.unparse(node.func)!r}"
        )
    args = tuple(_literal(arg, text, where) for arg in node.args)
    kwargs: dict[str, Any] = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            raise SpecError(f"{where}: '**' is not allowed; write each argument as name=value")
        kwargs[keyword.arg] = _literal(keyword.value, text, where)
    return node.func.id, args, kwargs


def _literal(node: ast.expr, text: str, where: str) -> Any:
    try:
        return _tuples(ast.literal_eval(node))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        value = ast.get_source_segment(text, node) or ast.dump(node)
        raise SpecError(
            f"{where}: argument {value!r} is not a literal; allowed are numbers, strings, True/False/None "
            "and tuples, lists or dicts of them"
        ) from None


def _tuples(value: Any) -> Any:
    """Lists become tuples (``scale=[0.2, 1.0]`` reads as ``(0.2, 1.0)``), recursively."""
    if isinstance(value, (list, tuple)):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def _parse_json(text: str) -> list[TransformSpec]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SpecError(f"cannot parse the spec as JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
    items = data if isinstance(data, list) else [data]
    out: list[TransformSpec] = []
    for index, item in enumerate(items, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise SpecError(
                f'JSON item {index} {json.dumps(item)}: expected an object with a string "name", '
                'e.g. {"name": "RandomResizedCrop", "size": 128}'
            )
        kwargs = {key: _tuples(value) for key, value in item.items() if key != "name"}
        out.append((item["name"], (), kwargs))
    return out


def build(spec: str) -> nn.Module:
    """Parse ``spec`` and build the pipeline: one transform, or several composed in order.

    Several transforms are chained with :class:`diffaug.Compose` when the package has it
    (one fused warp), else applied one after another.

    Raises:
        SpecError: unknown transform name, unknown argument, or a value the transform rejects;
            the message names the part and lists what is allowed.

    Examples:
        >>> import torch
        >>> pipeline = build("RandomResizedCrop(size=32, scale=(0.5, 1.0)) | ZoomCrop(size=16)")
        >>> pipeline(torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 3, 16, 16])
        >>> build("NoSuchCrop(32)")
        Traceback (most recent call last):
        ...
        diffaug.spec.SpecError: part 1 'NoSuchCrop(32)': unknown transform 'NoSuchCrop'; allowed: ...
    """
    parts = parse(spec)
    allowed = allowed_transforms()
    modules: list[nn.Module] = []
    for index, (name, args, kwargs) in enumerate(parts, start=1):
        where = f"part {index} {_show(name, args, kwargs)!r}"
        cls = allowed.get(name)
        if cls is None:
            raise SpecError(f"{where}: unknown transform {name!r}; allowed: {', '.join(allowed)}")
        signature = inspect.signature(cls.__init__)
        names = [
            p for p in list(signature.parameters)[1:] if signature.parameters[p].kind not in (inspect.Parameter.VAR_KEYWORD,)
        ]
        for key in kwargs:
            if key not in names:
                raise SpecError(f"{where}: {name} has no argument {key!r}; its arguments are: {', '.join(names)}")
        try:
            signature.bind(None, *args, **kwargs)
        except TypeError as error:
            raise SpecError(f"{where}: {error}; {name}'s arguments are: {', '.join(names)}") from None
        try:
            modules.append(cls(*args, **kwargs))
        except (TypeError, ValueError, IndexError) as error:
            raise SpecError(f"{where}: {error}") from None
    if len(modules) == 1:
        return modules[0]
    import diffaug

    compose = getattr(diffaug, "Compose", None)
    if compose is not None:
        try:
            return compose(modules)  # type: ignore[no-any-return]
        except (TypeError, ValueError) as error:
            raise SpecError(f"cannot compose the pipeline: {error}") from None
    return nn.Sequential(*modules)


def _show(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    inner = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{name}({', '.join(inner)})"
