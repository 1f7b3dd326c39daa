"""The architecture as a test: common <- events <- tokenizer <- backbone <- finetune, each layer
importing only from layers below it, and no module importing another package's private names."""
import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LAYERS = ("common", "events", "tokenizer", "backbone", "finetune")


def imports(path: Path):
    """(module, imported names) of every import statement of `path`, at any depth."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []


def sources(*folders):
    for folder in folders:
        yield from sorted((REPO / folder).rglob("*.py"))


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_imports_only_from_layers_below(layer):
    allowed = set(LAYERS[:LAYERS.index(layer) + 1])
    wrong = [f"{path.relative_to(REPO)} imports {module}" for path in sources(layer)
             for module, _ in imports(path) if module.split(".")[0] in set(LAYERS) - allowed]
    assert not wrong, wrong


def test_no_private_name_is_imported_from_another_package():
    wrong = []
    for path in sources(*LAYERS, "benchmarks", "tests"):
        package = path.relative_to(REPO).parts[0]
        for module, names in imports(path):
            top = module.split(".")[0]
            if top not in LAYERS or top == package:
                continue
            private = [n for n in names if n.startswith("_")] + \
                      [m for m in module.split(".") if m.startswith("_") and m != "__init__"]
            if private:
                wrong.append(f"{path.relative_to(REPO)}: from {module} import {', '.join(private)}")
    assert not wrong, wrong


def test_the_check_sees_a_violation(tmp_path, monkeypatch):
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "bad.py").write_text("def f():\n    from finetune.scores import _x\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    with pytest.raises(AssertionError, match="common/bad.py imports finetune.scores"):
        test_each_layer_imports_only_from_layers_below("common")
    with pytest.raises(AssertionError, match="from finetune.scores import _x"):
        test_no_private_name_is_imported_from_another_package()
