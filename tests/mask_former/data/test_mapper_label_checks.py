"""Out-of-range labels in the MaskFormer training mappers (semantic, panoptic, instance, DETR panoptic).

A class id >= NUM_CLASSES (or negative) used to crash deep in the matcher ("index 200 is out of
bounds", no file named) or, equal to NUM_CLASSES, to train silently as "no object". With
``num_classes`` each mapper rejects it, naming the annotation file and the bad values. The data
is the quickstart generator's (10 classes, ADE20K and COCO formats), edited per case.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
from PIL import Image

import mask_former  # noqa: F401  (registers the mappers)
from mask_former.config import add_mask_former_config
from mask_former.data.dataset_mappers import (
    DETRPanopticDatasetMapper,
    MaskFormerInstanceDatasetMapper,
    MaskFormerPanopticDatasetMapper,
    MaskFormerSemanticDatasetMapper,
)
from segcore.config import get_cfg
from segcore.data import DATASET_MAPPER_REGISTRY
from segcore.data import transforms as T
from segcore.data.detection_utils import LabelOutOfRangeError
from segcore.data.datasets.quickstart import load_quickstart_instances, load_quickstart_panoptic, load_quickstart_sem_seg

K = 10  # the quickstart's classes
BAD_LABELS = [K, 200, -1]  # "no object", the matcher's IndexError, negative


def _semantic(num_classes=K, ignore_label=255):
    return MaskFormerSemanticDatasetMapper(augmentations=[T.ResizeShortestEdge(48, 1000)], image_format="RGB",
                                           ignore_label=ignore_label, size_divisibility=-1, num_classes=num_classes)


def _write_labels(tmp_path, labels: np.ndarray, name: str) -> str:
    """A label file: PNG for values in [0, 255], an int32 TIFF for the others (negative ids)."""
    if labels.min() >= 0 and labels.max() <= 255:
        path = tmp_path / f"{name}.png"
        Image.fromarray(labels.astype(np.uint8)).save(path)
    else:
        path = tmp_path / f"{name}.tif"
        Image.fromarray(labels.astype(np.int32)).save(path)
    return str(path)


@pytest.fixture(scope="module")
def sem_dict(quickstart_root):
    return load_quickstart_sem_seg("training", str(quickstart_root))[0]


@pytest.fixture(scope="module")
def pan_dict(quickstart_root):
    return load_quickstart_panoptic("training", "train", str(quickstart_root))[0]


@pytest.fixture(scope="module")
def inst_dict(quickstart_root):
    dicts = load_quickstart_instances("quickstart_instance_train", "training", "train", str(quickstart_root))
    return next(d for d in dicts if len(d["annotations"]) >= 2)


# --------------------------------------------------------------------------- semantic
@pytest.mark.parametrize("bad", BAD_LABELS)
def test_semantic_mapper_rejects_out_of_range_labels(sem_dict, tmp_path, bad):
    labels = np.asarray(Image.open(sem_dict["sem_seg_file_name"])).astype(np.int64)
    assert labels[labels != 255].max() < K
    _semantic()(sem_dict)  # the generated labels are in range (255 is ignored)

    labels[0, :3] = bad
    bad_file = _write_labels(tmp_path, labels, "bad_labels")
    with pytest.raises(LabelOutOfRangeError) as e:
        _semantic()(dict(sem_dict, sem_seg_file_name=bad_file))
    message = str(e.value)
    assert bad_file in message and f"[{bad}]" in message and "NUM_CLASSES" in message
    # without num_classes nothing is checked (the mapper still builds and maps as before)
    _semantic(num_classes=None)(dict(sem_dict, sem_seg_file_name=bad_file))


def test_semantic_mapper_allows_the_ignore_label_and_lists_several_values(sem_dict, tmp_path):
    labels = np.asarray(Image.open(sem_dict["sem_seg_file_name"])).astype(np.int64)
    labels[:2] = 255
    _semantic()(dict(sem_dict, sem_seg_file_name=_write_labels(tmp_path, labels, "ignored")))
    labels[2, :4] = [12, 11, 12, 30]
    with pytest.raises(LabelOutOfRangeError, match=r"\[11, 12, 30\] outside \[0, 10\) that are not the ignore label 255"):
        _semantic()(dict(sem_dict, sem_seg_file_name=_write_labels(tmp_path, labels, "several")))
    # 255 is a class id, not the ignore label, for a mapper whose ignore label is 254
    with pytest.raises(LabelOutOfRangeError, match=r"\[11, 12, 30, 255\]"):
        _semantic(ignore_label=254)(dict(sem_dict, sem_seg_file_name=_write_labels(tmp_path, labels, "ign254")))


# --------------------------------------------------------------------------- panoptic (MaskFormer and DETR)
def _with_category(dataset_dict: dict, index: int, category, crowd: bool = False) -> dict:
    d = copy.deepcopy(dataset_dict)
    d["segments_info"][index]["category_id"] = category
    if crowd:
        d["segments_info"][index]["iscrowd"] = 1
    return d


def _panoptic(num_classes=K):
    return MaskFormerPanopticDatasetMapper(augmentations=[T.ResizeShortestEdge(48, 1000)], image_format="RGB",
                                           ignore_label=255, size_divisibility=-1, num_classes=num_classes)


def _detr(num_classes=K, is_train=True):
    return DETRPanopticDatasetMapper(is_train, crop_gen=None, tfm_gens=[T.ResizeShortestEdge(48, 1000)],
                                     image_format="RGB", num_classes=num_classes)


@pytest.mark.parametrize("make_mapper", [_panoptic, _detr], ids=["mask_former_panoptic", "detr_panoptic"])
@pytest.mark.parametrize("bad", BAD_LABELS)
def test_panoptic_mappers_reject_out_of_range_segment_categories(pan_dict, make_mapper, bad):
    out = make_mapper()(pan_dict)
    assert out["instances"].gt_classes.max() < K
    for crowd in (False, True):  # a crowd segment's id is checked too: it is the same annotation error
        with pytest.raises(LabelOutOfRangeError) as e:
            make_mapper()(_with_category(pan_dict, 1, bad, crowd=crowd))
        assert pan_dict["pan_seg_file_name"] in str(e.value) and f"[{bad}]" in str(e.value)
    # without num_classes: mapped as before (the class id is passed through)
    out = make_mapper(num_classes=None)(_with_category(pan_dict, 1, bad))
    assert bad in out["instances"].gt_classes.tolist()


def test_detr_mapper_checks_only_in_training(pan_dict):
    out = _detr(is_train=False)(_with_category(pan_dict, 0, 200))  # inference reads no annotation
    assert "instances" not in out


def test_panoptic_mapper_checks_its_semantic_labels(pan_dict, tmp_path):
    labels = np.asarray(Image.open(pan_dict["sem_seg_file_name"])).astype(np.int64)
    labels[-1, -1] = K
    bad_file = _write_labels(tmp_path, labels, "pan_sem")
    with pytest.raises(LabelOutOfRangeError, match="pan_sem.png"):
        _panoptic()(dict(pan_dict, sem_seg_file_name=bad_file))


# --------------------------------------------------------------------------- instance
@pytest.mark.parametrize("bad", BAD_LABELS)
def test_instance_mapper_rejects_out_of_range_categories(inst_dict, bad):
    mapper = MaskFormerInstanceDatasetMapper(augmentations=[T.ResizeShortestEdge(48, 1000)], image_format="RGB",
                                             size_divisibility=-1, num_classes=K)
    assert mapper(inst_dict)["instances"].gt_classes.max() < K
    d = copy.deepcopy(inst_dict)
    d["annotations"][1]["category_id"] = bad
    with pytest.raises(LabelOutOfRangeError) as e:
        mapper(d)
    assert inst_dict["file_name"] in str(e.value) and f"[{bad}]" in str(e.value)


# --------------------------------------------------------------------------- config
def test_num_classes_comes_from_the_config():
    cfg = get_cfg()
    add_mask_former_config(cfg)
    cfg.DATASETS.TRAIN = ("ade20k_sem_seg_train",)
    cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES = 7
    for name in ("mask_former_semantic", "mask_former_panoptic", "mask_former_instance", "detr_panoptic"):
        mapper = DATASET_MAPPER_REGISTRY.get(name)(cfg, True)
        assert mapper.num_classes == 7, name
    with pytest.raises(ValueError, match="num_classes"):
        _semantic(num_classes=0)
