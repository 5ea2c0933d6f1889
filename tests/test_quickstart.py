import json
import os

import pytest

from keras_indi.cli import main


@pytest.mark.backend_agnostic
def test_quickstart_writes_a_report_and_never_overwrites(tmp_path):
    output = os.path.join(tmp_path, "report")
    assert main(["quickstart", "--output", output, "--epochs", "1", "--samples", "512"]) == 0
    for name in ("results.md", "results.csv", "results.json", "points.png", "indi.keras", "regression.keras"):
        assert os.path.exists(os.path.join(output, name)), name
    rows = json.load(open(os.path.join(output, "results.json")))["rows"]
    assert {row["method"] for row in rows} == {"regression", "indi"}
    with pytest.raises(SystemExit):
        main(["quickstart", "--output", output, "--epochs", "1", "--samples", "512"])
