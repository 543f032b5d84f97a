"""tools/evaluate_ytvis.py: saved results evaluated offline print the YouTube-VIS API's 12 numbers
as JSON (the original API's, ``tests/fixtures/ytvis_eval_original_api.json``)."""
import importlib.util
import json
import os

import pytest

from tests.mask2former_video.ytvis_eval_case import CASES, ground_truth, restricted, results
from tests.paths import FIXTURES, REPO_ROOT

KEYS = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("segcore_evaluate_ytvis",
                                                  os.path.join(REPO_ROOT, "tools", "evaluate_ytvis.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("case", sorted(CASES))
def test_prints_the_twelve_numbers_of_the_original_api(tool, tmp_path, capsys, case):
    gt, records = restricted(ground_truth(), results(), CASES[case])
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "results.json").write_text(json.dumps(records))
    tool.main(["--gt", str(tmp_path / "gt.json"), "--results", str(tmp_path / "results.json")])
    printed = json.loads(capsys.readouterr().out)
    assert list(printed) == KEYS
    with open(os.path.join(FIXTURES, "ytvis_eval_original_api.json")) as f:
        assert printed == pytest.approx(json.load(f)[case]["stats"], abs=1e-12)
    if case == "video_1_only":
        assert printed["APs"] == printed["ARs"] == -1


def test_bad_inputs_are_one_line_errors(tool, tmp_path, capsys):
    (tmp_path / "test.json").write_text(json.dumps(dict(ground_truth(), annotations=[])))
    (tmp_path / "results.json").write_text(json.dumps(results()))
    with pytest.raises(SystemExit):
        tool.main(["--gt", str(tmp_path / "test.json"), "--results", str(tmp_path / "results.json")])
    assert "annotations" in capsys.readouterr().err
    (tmp_path / "valid.json").write_text(json.dumps(ground_truth()))
    with pytest.raises(FileNotFoundError, match="results file not found"):  # run_cli prints it in one line
        tool.main(["--gt", str(tmp_path / "valid.json"), "--results", str(tmp_path / "missing.json")])
