"""Config: defaults, _BASE_ inheritance, overrides, the safe eval tag, and errors naming keys."""
import os

import pytest

from segcore.config import CfgNode, ConfigError, configurable, get_cfg
from segcore.config.safe_eval import safe_eval_expression
from tests.paths import CONFIGS



def _write(path, text):
    path.write_text(text)
    return str(path)


def test_base_inheritance_chain_and_relative_paths(tmp_path):
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "root.yaml", "SOLVER:\n  BASE_LR: 0.5\n  MAX_ITER: 10\nOUTPUT_DIR: root\n")
    _write(tmp_path / "sub" / "mid.yaml", "_BASE_: ../root.yaml\nSOLVER:\n  MAX_ITER: 20\n")
    leaf = _write(tmp_path / "sub" / "leaf.yaml", "_BASE_: mid.yaml\nOUTPUT_DIR: leaf\n")
    cfg = get_cfg()
    cfg.merge_from_file(leaf)
    assert cfg.SOLVER.BASE_LR == 0.5  # from the root
    assert cfg.SOLVER.MAX_ITER == 20  # mid overrides root
    assert cfg.OUTPUT_DIR == "leaf"  # leaf overrides all
    assert cfg.SOLVER.MOMENTUM == 0.9  # untouched default


def test_unknown_key_in_file_names_key_and_file(tmp_path):
    path = _write(tmp_path / "bad.yaml", "SOLVER:\n  BASE_LRR: 0.1\n")
    with pytest.raises(ConfigError) as e:
        get_cfg().merge_from_file(path)
    assert "SOLVER.BASE_LRR" in str(e.value) and "bad.yaml" in str(e.value)


def test_unknown_key_in_overrides_names_key():
    with pytest.raises(ConfigError, match="MODEL.NOT_A_KEY"):
        get_cfg().merge_from_list(["MODEL.NOT_A_KEY", "1"])
    with pytest.raises(ConfigError, match="odd"):
        get_cfg().merge_from_list(["SOLVER.BASE_LR"])


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        get_cfg().merge_from_file(str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="Cannot parse"):
        get_cfg().merge_from_file(_write(tmp_path / "broken.yaml", "SOLVER: [unclosed\n"))
    with pytest.raises(ConfigError, match="not found"):
        get_cfg().merge_from_file(_write(tmp_path / "child.yaml", "_BASE_: missing_base.yaml\n"))


def test_circular_base_is_an_error_showing_the_cycle(tmp_path):
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "a.yaml", "_BASE_: sub/b.yaml\n")
    _write(tmp_path / "sub" / "b.yaml", "_BASE_: ../c.yaml\n")
    _write(tmp_path / "c.yaml", "_BASE_: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle") as e:
        get_cfg().merge_from_file(str(tmp_path / "a.yaml"))
    cycle = str(e.value).split("cycle: ")[1].split(" -> ")
    assert [os.path.basename(p) for p in cycle] == ["a.yaml", "b.yaml", "c.yaml", "a.yaml"]
    # a file that names itself, and the same base reached twice along one chain by another path
    with pytest.raises(ConfigError, match="cycle"):
        get_cfg().merge_from_file(_write(tmp_path / "self.yaml", "_BASE_: ./sub/../self.yaml\n"))


def test_type_mismatch_is_an_error():
    with pytest.raises(ValueError):
        get_cfg().merge_from_list(["SOLVER.MAX_ITER", "'many'"])


def test_overrides_parse_literals_and_freeze():
    cfg = get_cfg()
    cfg.merge_from_list(["SOLVER.STEPS", "(10, 20)", "INPUT.CROP.ENABLED", "True", "SOLVER.BASE_LR", "0.02"])
    assert cfg.SOLVER.STEPS == (10, 20) and cfg.INPUT.CROP.ENABLED is True and cfg.SOLVER.BASE_LR == 0.02
    cfg.freeze()
    with pytest.raises(AttributeError):
        cfg.SOLVER.BASE_LR = 1.0


def test_original_eval_tag_is_evaluated_safely(tmp_path):
    path = _write(tmp_path / "e.yaml",
                  'INPUT:\n  MIN_SIZE_TRAIN: !!python/object/apply:eval ["[int(x * 0.1 * 512) for x in range(5, 21)]"]\n')
    cfg = get_cfg()
    cfg.merge_from_file(path)
    assert list(cfg.INPUT.MIN_SIZE_TRAIN) == [int(x * 0.1 * 512) for x in range(5, 21)]
    evil = _write(tmp_path / "evil.yaml",
                  'OUTPUT_DIR: !!python/object/apply:eval ["__import__(\'os\').system(\'echo hi\')"]\n')
    with pytest.raises(ConfigError, match="not allowed"):
        get_cfg().merge_from_file(evil)
    with pytest.raises(ConfigError):  # other python tags are refused by the safe loader
        get_cfg().merge_from_file(_write(tmp_path / "obj.yaml", "OUTPUT_DIR: !!python/object/apply:os.getcwd []\n"))


@pytest.mark.parametrize("expr,value", [("[2 ** i for i in range(3)]", [1, 2, 4]), ("(1, -2.5)", (1, -2.5)),
                                        ("[x for x in range(10) if x % 3 == 0]", [0, 3, 6, 9]),
                                        ("round(7 / 2)", 4)])
def test_safe_eval_expressions(expr, value):
    assert safe_eval_expression(expr) == value


@pytest.mark.parametrize("expr", ["open('x')", "().__class__", "[y for y in range(3)] + z", "lambda: 1"])
def test_safe_eval_refuses(expr):
    with pytest.raises(ValueError):
        safe_eval_expression(expr)


def test_original_ade20k_config_resolves(mf_cfg):
    mf_cfg.merge_from_file(os.path.join(CONFIGS, "ade20k-150", "maskformer_R50_bs16_160k.yaml"))
    assert mf_cfg.MODEL.META_ARCHITECTURE == "MaskFormer"
    assert list(mf_cfg.INPUT.CROP.SIZE) == [512, 512]  # yacs coerces to the default's list type
    assert mf_cfg.DATASETS.TRAIN == ("ade20k_sem_seg_train",)
    assert mf_cfg.INPUT.MIN_SIZE_TRAIN[0] == 256 and mf_cfg.INPUT.MIN_SIZE_TRAIN[-1] == 1024
    assert mf_cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE == "full_model"
    # round trip through dump
    again = get_cfg()
    from mask_former import add_mask_former_config

    add_mask_former_config(again)
    again.merge_from_other_cfg(CfgNode.load_cfg(mf_cfg.dump()))
    assert again == mf_cfg


class _Head:
    @configurable
    def __init__(self, *, width: int, depth: int = 2):
        self.width, self.depth = width, depth

    @classmethod
    def from_config(cls, cfg, depth=3):
        return {"width": cfg.MODEL.FPN.OUT_CHANNELS, "depth": depth}


def test_configurable_both_ways():
    cfg = get_cfg()
    assert vars(_Head(width=5)) == {"width": 5, "depth": 2}
    assert vars(_Head(cfg)) == {"width": 256, "depth": 3}
    assert vars(_Head(cfg, depth=7)) == {"width": 256, "depth": 7}
    assert vars(_Head(cfg=cfg, width=9)) == {"width": 9, "depth": 3}  # explicit kwargs override


def test_configurable_function():
    @configurable(from_config=lambda cfg: {"n": cfg.SOLVER.MAX_ITER})
    def f(*, n):
        return n * 2

    assert f(n=3) == 6 and f(get_cfg()) == 80000
