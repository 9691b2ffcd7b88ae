"""What ``diffaug`` and ``diffaug.transforms`` export: every public transform, under both names, listed once."""

import importlib
import inspect
import pkgutil

import diffaug
import diffaug.transforms


def test_the_package_exports_the_transforms_list_and_the_two_core_modules():
    assert diffaug.__all__ == ["distributions", "functional", *diffaug.transforms.__all__]
    assert len(set(diffaug.__all__)) == len(diffaug.__all__)
    for name in diffaug.transforms.__all__:
        assert getattr(diffaug, name) is getattr(diffaug.transforms, name)


def test_star_import_gives_exactly_the_listed_names():
    namespace: dict[str, object] = {}
    exec("from diffaug import *", namespace)
    assert sorted(set(namespace) - {"__builtins__"}) == sorted(diffaug.__all__)


def test_every_public_transform_class_is_exported():
    # targets.py holds the call convention (its Targets bundle stays under diffaug.transforms.targets).
    for info in pkgutil.iter_modules(diffaug.transforms.__path__):
        if info.name == "targets":
            continue
        module = importlib.import_module(f"diffaug.transforms.{info.name}")
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and obj.__module__ == module.__name__ and not name.startswith("_"):
                assert name in diffaug.__all__, f"{module.__name__}.{name} is not exported from diffaug"
