"""The documentation is true: its code runs, and every public name is documented with an example."""

import inspect
import re
from pathlib import Path

import pytest
import torch

import diffaug
import diffaug.functional
import diffaug.transforms

DOCS = Path(__file__).resolve().parents[1] / "docs"
# Pages whose ```python blocks are complete programs, run top to bottom in one namespace per page.
RUNNABLE_PAGES = ["index.md", "getting-started.md", "convention.md", "gpu-training.md", "migration.md", "architecture.md"]
README = DOCS.parent / "README.md"


def _blocks(path):
    return re.findall(r"^```python\n(.*?)^```", path.read_text(), flags=re.S | re.M)


@pytest.mark.parametrize("page", RUNNABLE_PAGES)
def test_python_blocks_of_the_page_run(page):
    blocks = _blocks(DOCS / page)
    namespace = {"__name__": f"docs_{page}"}
    for block in blocks:
        torch.manual_seed(0)
        exec(compile(block, f"docs/{page}", "exec"), namespace)


def test_readme_python_runs():
    blocks = _blocks(README)
    assert blocks, "the README shows a first pipeline"
    namespace = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)


def _public():
    for module in (diffaug, diffaug.functional, diffaug.transforms):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                yield f"{module.__name__}.{name}", obj


@pytest.mark.parametrize(("name", "obj"), sorted(dict(_public()).items()))
def test_public_name_has_a_docstring_with_an_example(name, obj):
    doc = inspect.getdoc(obj) or ""
    assert doc.strip(), f"{name} has no docstring"
    assert ">>> " in doc, f"{name}'s docstring has no runnable example (a '>>> ' line)"


def test_every_nav_page_exists_and_every_page_is_in_the_nav():
    import yaml

    config = yaml.load((DOCS.parent / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)

    def pages(nav):
        for item in nav:
            for value in item.values():
                yield from pages(value) if isinstance(value, list) else [value]

    in_nav = set(pages(config["nav"]))
    on_disk = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert in_nav == on_disk


def test_images_referenced_by_pages_exist():
    for page in DOCS.rglob("*.md"):
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name} shows {target}, which does not exist"
