"""Every public name the README and the docs mention exists where they say it does."""

import importlib
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCUMENTS = ["README.md", "RESULTS.md", os.path.join("docs", "reference.md"), os.path.join("docs", "parameterization.md")]
NAME = re.compile(r"`(keras_indi(?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def _resolve(dotted):
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            target = getattr(target, attribute)
        return target
    raise ImportError(dotted)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("document", DOCUMENTS)
def test_documented_names_are_importable(document):
    text = open(os.path.join(ROOT, document)).read()
    names = sorted(set(NAME.findall(text)))
    missing = []
    for name in names:
        try:
            _resolve(name)
        except (ImportError, AttributeError):
            missing.append(name)
    assert not missing, f"{document} names {missing}, which keras_indi does not export there"
