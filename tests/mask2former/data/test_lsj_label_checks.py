"""Out-of-range category ids in the LSJ mappers (``coco_instance_lsj``, ``coco_panoptic_lsj``).

A "category_id" >= NUM_CLASSES or negative is an annotation error: the mappers reject it with
the file and the values (before, it crashed in the matcher or trained as "no object"). The data
is the quickstart generator's COCO instance and panoptic files (10 classes).
"""
from __future__ import annotations

import copy

import pytest

from mask2former.config import add_maskformer2_config
from mask2former.data.dataset_mappers import COCOInstanceLSJDatasetMapper, COCOPanopticLSJDatasetMapper
from mask2former.data.dataset_mappers.lsj import build_lsj_augmentation
from segcore.config import get_cfg
from segcore.data import build_dataset_mapper
from segcore.data.detection_utils import LabelOutOfRangeError
from segcore.data.datasets.quickstart import load_quickstart_instances, load_quickstart_panoptic

K = 10  # the quickstart's classes
S = 64  # INPUT.IMAGE_SIZE here


def _augs():
    return build_lsj_augmentation(image_size=S, min_scale=1.0, max_scale=1.0, random_flip="none")


@pytest.fixture(scope="module")
def pan_dict(quickstart_root):
    return load_quickstart_panoptic("training", "train", str(quickstart_root))[0]


@pytest.fixture(scope="module")
def inst_dict(quickstart_root):
    dicts = load_quickstart_instances("quickstart_instance_train", "training", "train", str(quickstart_root))
    return next(d for d in dicts if len(d["annotations"]) >= 2)


@pytest.mark.parametrize("bad", [K, 200, -1])
def test_panoptic_lsj_rejects_out_of_range_segment_categories(pan_dict, bad):
    mapper = COCOPanopticLSJDatasetMapper(augmentations=_augs(), image_format="RGB", num_classes=K)
    assert mapper(pan_dict)["instances"].gt_classes.max() < K
    d = copy.deepcopy(pan_dict)
    d["segments_info"][-1]["category_id"] = bad
    with pytest.raises(LabelOutOfRangeError) as e:
        mapper(d)
    assert pan_dict["pan_seg_file_name"] in str(e.value) and f"[{bad}]" in str(e.value)
    unchecked = COCOPanopticLSJDatasetMapper(augmentations=_augs(), image_format="RGB")  # num_classes None
    assert bad in unchecked(d)["instances"].gt_classes.tolist()


@pytest.mark.parametrize("bad", [K, 200, -1])
def test_instance_lsj_rejects_out_of_range_categories(inst_dict, bad):
    mapper = COCOInstanceLSJDatasetMapper(augmentations=_augs(), image_format="RGB", num_classes=K)
    assert mapper(inst_dict)["instances"].gt_classes.max() < K
    d = copy.deepcopy(inst_dict)
    d["annotations"][0]["category_id"] = bad
    d["annotations"][0]["iscrowd"] = 1  # crowd annotations are checked too
    with pytest.raises(LabelOutOfRangeError) as e:
        mapper(d)
    assert inst_dict["file_name"] in str(e.value) and f"[{bad}]" in str(e.value)


def test_lsj_num_classes_comes_from_the_config():
    cfg = get_cfg()
    add_maskformer2_config(cfg)
    cfg.INPUT.IMAGE_SIZE = S
    cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES = 13
    for name in ("coco_instance_lsj", "coco_panoptic_lsj"):
        cfg.INPUT.DATASET_MAPPER_NAME = name
        assert build_dataset_mapper(cfg, True).num_classes == 13
