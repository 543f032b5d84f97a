"""mask2former.convert.config_writer: the YAML a conversion writes reads back as the overrides, on
top of its _BASE_ (relative inside the repository, absolute outside)."""
import os

import yaml

from mask2former.convert.config_writer import REPOSITORY_ROOT, write_config_yaml
from segcore.engine import setup_cfg
from tests.paths import CONFIGS, REPO_ROOT

BASE = os.path.join(CONFIGS, "coco", "panoptic-segmentation", "maskformer2_R50_bs16_50ep.yaml")
OVERRIDES = {"MODEL.SEM_SEG_HEAD.NUM_CLASSES": 7, "MODEL.PIXEL_MEAN": [1.5, 2.0, 3.0], "MODEL.SWIN.QK_SCALE": None,
             "MODEL.MASK_FORMER.PRE_NORM": True, "INPUT.FORMAT": "RGB"}


def test_the_repository_is_where_the_configs_are():
    assert os.path.samefile(REPOSITORY_ROOT, REPO_ROOT)


def test_outside_the_repository_the_base_is_absolute(tmp_path):
    path = tmp_path / "m2f.yaml"
    write_config_yaml(OVERRIDES, str(path), base_config=BASE, header="Written by a test")
    text = path.read_text()
    assert text.startswith("# Written by a test\n_BASE_: ")
    assert "PIXEL_MEAN: [1.5, 2.0, 3.0]" in text  # lists in flow style, as our config files
    data = yaml.safe_load(text)
    assert data["_BASE_"] == BASE
    assert data["MODEL"]["SEM_SEG_HEAD"] == {"NUM_CLASSES": 7} and data["MODEL"]["SWIN"] == {"QK_SCALE": None}
    cfg = setup_cfg(str(path))
    assert cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES == 7 and list(cfg.MODEL.PIXEL_MEAN) == [1.5, 2.0, 3.0]
    assert cfg.MODEL.MASK_FORMER.PRE_NORM is True and cfg.MODEL.RESNETS.DEPTH == 50  # from the base


def test_inside_the_repository_the_base_is_relative(tmp_path):
    root = tmp_path / "checkout"
    (root / "configs").mkdir(parents=True)
    (root / "configs" / "base.yaml").write_text("MODEL:\n  META_ARCHITECTURE: MaskFormer\n")
    (root / "out").mkdir()
    write_config_yaml({"MODEL.SEM_SEG_HEAD.NUM_CLASSES": 3}, str(root / "out" / "a.yaml"),
                      base_config=str(root / "configs" / "base.yaml"), root=str(root))
    data = yaml.safe_load((root / "out" / "a.yaml").read_text())
    assert data["_BASE_"] == os.path.join("..", "configs", "base.yaml")
