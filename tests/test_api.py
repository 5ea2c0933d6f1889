"""The public API, checked from one source: every ``keras_indi.x.y`` that the README, the docs
and the tutorials name is importable where they say, and every path recorded by the export
decorator (`keras_indi.api_export.keras_indi_export`) resolves to the object it decorates."""

import glob
import importlib
import json
import os
import pkgutil
import re

import pytest

import keras_indi

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOTTED = re.compile(r"(?<![\w./-])keras_indi(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
FROM_IMPORT = re.compile(
    r"^[ \t]*from[ \t]+(keras_indi(?:\.\w+)*)[ \t]+import[ \t]+(?:\(([^)]*)\)|([\w \t,]+))", re.MULTILINE
)


def _markdown_texts():
    """``(file, text)`` for the README, docs/**/*.md, tutorials/**/*.md and the markdown
    cells of the tutorial notebooks."""
    files = [os.path.join(ROOT, "README.md")]
    files += glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True)
    files += glob.glob(os.path.join(ROOT, "tutorials", "**", "*.md"), recursive=True)
    for path in sorted(files):
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as file:
                yield os.path.relpath(path, ROOT), file.read()
    for path in sorted(glob.glob(os.path.join(ROOT, "tutorials", "**", "*.ipynb"), recursive=True)):
        with open(path, encoding="utf-8") as file:
            notebook = json.load(file)
        text = "\n".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "markdown")
        yield os.path.relpath(path, ROOT), text


def documented_names():
    """``{dotted name: [files]}`` of every ``keras_indi.…`` name the documentation mentions,
    including ``from keras_indi.x import a, b`` lines of its code examples."""
    names = {}
    for path, text in _markdown_texts():
        found = set(DOTTED.findall(text))
        for module, parenthesized, imported in FROM_IMPORT.findall(text):
            for name in (parenthesized or imported).split(","):
                name = name.split(" as ")[0].strip()
                if name:
                    found.add(f"{module}.{name}")
        for name in found:
            names.setdefault(name, []).append(path)
    return names


def resolve(dotted):
    """The object `dotted` names: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        module_name = ".".join(parts[:split])
        try:
            value = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name is not None and module_name.startswith(error.name) is False:
                raise  # the module exists but one of its own imports is missing
            continue
        for attribute in parts[split:]:
            value = getattr(value, attribute)
        return value
    raise ImportError(dotted)


def test_the_documentation_names_something():
    names = documented_names()
    assert "keras_indi.InDIModel" in names and len(names) > 10


@pytest.mark.parametrize("name", sorted(documented_names()))
def test_documented_name_resolves(name):
    try:
        resolve(name)
    except (ImportError, AttributeError) as error:
        pytest.fail(f"{name} (named in {', '.join(documented_names()[name])}) does not resolve: {error}")


def exported_symbols():
    """``{export path: object}`` for every symbol decorated with `keras_indi_export`, found in
    every library module (all are imported, as `register_serializables` does)."""
    exports = {}
    prefix = keras_indi.__name__ + "."
    for info in pkgutil.walk_packages(keras_indi.__path__, prefix):
        if info.name.startswith(("keras_indi.__main__", "keras_indi.apps")):
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional dependency (e.g. tensorflow_datasets) is missing
            continue
        for value in list(vars(module).values()):
            # A class's own paths only (a subclass inherits the attribute).
            paths = vars(value).get("_keras_indi_export_paths") if isinstance(value, type) else getattr(
                value, "_keras_indi_export_paths", None
            )
            if paths and getattr(value, "__module__", None) == module.__name__:
                for path in paths:
                    exports[path] = value
    return exports


def test_every_export_path_resolves_to_the_decorated_object():
    exports = exported_symbols()
    assert "keras_indi.InDIModel" in exports
    wrong = {}
    for path, value in sorted(exports.items()):
        try:
            found = resolve(path)
        except (ImportError, AttributeError) as error:
            wrong[path] = f"does not resolve: {error}"
            continue
        if found is not value:
            wrong[path] = f"is {found!r}, not the exported {value!r}"
    assert wrong == {}


def test_every_lazy_public_name_resolves():
    """Each package's ``__all__`` (its lazy table, `keras_indi._lazy.attach`) names real objects."""
    missing = []
    packages = [keras_indi] + [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(keras_indi.__path__, keras_indi.__name__ + ".")
        if info.ispkg and not info.name.startswith("keras_indi.apps")
    ]
    for package in packages:
        for name in getattr(package, "__all__", ()):
            try:
                getattr(package, name)
            except (ImportError, AttributeError) as error:
                missing.append(f"{package.__name__}.{name}: {error}")
    assert missing == []


def test_resolve():
    assert resolve("keras_indi.samplers") is importlib.import_module("keras_indi.samplers")
    with pytest.raises(AttributeError):
        resolve("keras_indi.samplers.no_such_name")
