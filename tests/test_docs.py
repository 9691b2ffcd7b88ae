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
RUNNABLE_PAGES = [
    "index.md",
    "getting-started.md",
    "convention.md",
    "gpu-training.md",
    "migration.md",
    "architecture.md",
    "pipelines.md",
    "antialias.md",
    "colour.md",
    "pixel-ops.md",
    "mixing.md",
    "containers.md",
    "policies.md",
]
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
    """Every public class and function, once, under the shortest name it is exported as."""
    seen = {}
    for module in (diffaug, diffaug.functional, diffaug.transforms):
        for name in module.__all__:
            obj = getattr(module, name)
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and id(obj) not in seen:
                seen[id(obj)] = (f"{module.__name__}.{name}", obj)
    return sorted(seen.values(), key=lambda item: item[0])


@pytest.mark.parametrize(("name", "obj"), _public(), ids=lambda v: v if isinstance(v, str) else "")
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


# The layering stated on the architecture page, checked on the imports of every module.
PACKAGE = Path(diffaug.__file__).resolve().parent


def _imports(path):
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if n == "diffaug" or n.startswith("diffaug.")}


def _modules(folder):
    return sorted((PACKAGE / folder).glob("*.py")) if folder else [PACKAGE / "distributions.py"]


@pytest.mark.parametrize("path", _modules("functional"), ids=lambda p: p.name)
def test_functional_uses_only_functional(path):
    outside = {n for n in _imports(path) if not n.startswith("diffaug.functional")}
    assert not outside, f"functional/{path.name} imports {outside}"


def test_distributions_use_nothing_of_diffaug():
    assert not _imports(PACKAGE / "distributions.py")


@pytest.mark.parametrize("path", _modules("transforms"), ids=lambda p: p.name)
def test_transforms_use_only_the_core(path):
    allowed = ("diffaug.functional", "diffaug.distributions", "diffaug.transforms")
    outside = {n for n in _imports(path) if n not in ("diffaug",) and not n.startswith(allowed)}
    assert not outside, f"transforms/{path.name} imports {outside}"
    source = path.read_text()
    assert "grid_sample(" not in source and "affine_grid(" not in source, "transforms resample through functional.warp"


def test_compose_knows_only_the_protocol():
    imported = _imports(PACKAGE / "transforms" / "compose.py")
    concrete = ("crop", "geometric", "colour", "pixel", "mixing", "multicrop", "policies", "containers")
    assert not {n for n in imported if n.startswith(tuple(f"diffaug.transforms.{name}" for name in concrete))}


def test_nothing_in_the_core_imports_the_tools_on_top():
    tools = ("diffaug.cli", "diffaug.spec", "diffaug.search", "benchmarks")
    for path in [*_modules("functional"), *_modules("transforms"), PACKAGE / "distributions.py", PACKAGE / "__init__.py"]:
        assert not {n for n in _imports(path) if n.startswith(tools)}, path


def test_no_align_corners_true_in_the_package():
    for path in PACKAGE.rglob("*.py"):
        code = re.sub(r'"""(.*?)"""', "", path.read_text(), flags=re.S)
        assert "align_corners=True" not in code, path


def test_cli_transcripts_shown_in_the_docs_are_what_the_cli_prints(capsys):
    import shlex

    from diffaug.cli import main

    transcripts = re.findall(r"^\$ (diffaug .+)\n(.+)$", (DOCS / "getting-started.md").read_text(), flags=re.M)
    assert transcripts, "getting-started shows a bad spec and its error"
    for command, shown in transcripts:
        argv = shlex.split(command)[1:]
        assert main(argv) == 2
        assert capsys.readouterr().err.strip() == shown.strip()
