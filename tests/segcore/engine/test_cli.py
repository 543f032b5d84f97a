"""run_cli: a user's mistake is one line on stderr and exit status 1; a bug keeps its traceback."""
import pytest

from segcore.config import ConfigError, get_cfg
from segcore.data import UnknownDatasetError
from segcore.engine import default_setup, run_cli
from segcore.engine.cli import USER_ERRORS, UserErrorExit


def test_a_user_error_is_one_line_and_status_1(capsys):
    def main():
        raise ConfigError("Non-existent config key: MODEL.NOT_A_KEY")

    with pytest.raises(SystemExit) as e:
        run_cli(main, prog="tool.py")
    assert e.value.code == 1 and isinstance(e.value, UserErrorExit)
    assert capsys.readouterr().err == "tool.py: error: Non-existent config key: MODEL.NOT_A_KEY\n"


def test_other_errors_keep_their_traceback_and_results_pass_through():
    def bug():
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):
        run_cli(bug, prog="tool.py")
    assert run_cli(lambda: {"mIoU": 1.0}) == {"mIoU": 1.0}
    assert not issubclass(ZeroDivisionError, USER_ERRORS)


def test_default_setup_names_an_unknown_dataset_before_writing_anything(tmp_path):
    cfg = get_cfg()
    cfg.OUTPUT_DIR = str(tmp_path / "out")
    cfg.DATASETS.TEST = ("ade20k_sem_seg_val", "ade20k_sem_seg_vall")
    with pytest.raises(UnknownDatasetError) as e:
        default_setup(cfg, None)
    assert "'ade20k_sem_seg_vall' (named by DATASETS.TEST) is not registered" in str(e.value)
    assert not (tmp_path / "out").exists()
