"""The datasets/prepare_*.py converters, run on generated raw data in the release formats."""
import importlib.util
import json
import os
import pickle
import sys

import numpy as np
import pytest
from PIL import Image

from segcore.data.datasets.categories import load_categories
from segcore.data.datasets.panoptic_ids import id2rgb, rgb2id
from tests.paths import DATASET_SCRIPTS

DATASETS = DATASET_SCRIPTS


def _script(name):
    """Load ``datasets/<name>.py`` as ``python datasets/<name>.py`` runs it: with its folder first on
    ``sys.path`` (the ADE20K converters import ``prepare_ade20k_common`` from beside them)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(DATASETS, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, DATASETS)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(DATASETS)
    return module


def _save(path, arr):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(arr).save(path)


def test_coco_semantic_from_panoptic(tmp_path):
    mod = _script("prepare_coco_semantic_annos_from_panoptic_annos")
    pan = np.zeros((4, 5), np.int64)
    pan[0] = 300       # person (id 1) -> 0
    pan[1] = 70000     # wall-other-merged (id 199) -> 131
    pan[2, :2] = 9     # toothbrush (id 90) -> 79
    _save(str(tmp_path / "coco/panoptic_val2017/1.png"), id2rgb(pan))
    os.makedirs(tmp_path / "coco/annotations")
    (tmp_path / "coco/annotations/panoptic_val2017.json").write_text(json.dumps({"annotations": [{
        "image_id": 1, "file_name": "1.png", "segments_info": [
            {"id": 300, "category_id": 1}, {"id": 70000, "category_id": 199}, {"id": 9, "category_id": 90}]}]}))
    assert mod.main(["--root", str(tmp_path), "--splits", "val2017"]) == {"val2017": 1}
    out = np.asarray(Image.open(tmp_path / "coco/panoptic_semseg_val2017/1.png"))
    assert out.dtype == np.uint8
    assert (out[0] == 0).all() and (out[1] == 131).all() and out[2, 0] == 79 and out[2, 3] == 255 and (out[3] == 255).all()


def test_coco_stuff_10k_mat_to_png(tmp_path):
    import scipy.io

    mod = _script("prepare_coco_stuff_10k_sem_seg")
    base = tmp_path / "coco/coco_stuff_10k"
    S = np.array([[1, 2, 3], [172, 2, 1]], np.uint8)
    for split, name in (("train", "COCO_train2014_000000000077"), ("test", "COCO_train2014_000000000078")):
        os.makedirs(base / "imageLists", exist_ok=True)
        (base / "imageLists" / f"{split}.txt").write_text(name + "\n")
        _save(str(base / "images" / f"{name}.jpg"), np.zeros((2, 3, 3), np.uint8))
        os.makedirs(base / "annotations", exist_ok=True)
        scipy.io.savemat(str(base / "annotations" / f"{name}.mat"), {"S": S})
    assert mod.main(["--root", str(tmp_path)]) == {"train": 1, "test": 1}
    out = np.asarray(Image.open(base / "annotations_detectron2/train/COCO_train2014_000000000077.png"))
    np.testing.assert_array_equal(out, [[255, 0, 1], [170, 0, 255]])
    assert (base / "images_detectron2/test/COCO_train2014_000000000078.jpg").is_file()
    with pytest.raises(ValueError, match="1..172"):
        mod.convert_labels(np.array([[173]], np.uint8))


def _ade_raw(base, split="validation", stem="ADE_val_00000001"):
    _save(str(base / f"images/{split}/{stem}.jpg"), np.zeros((4, 6, 3), np.uint8))
    sem = np.zeros((4, 6), np.uint8)
    sem[:2] = 1          # wall (0, stuff)
    sem[2:, :3] = 3      # sky (2, stuff)
    sem[2:, 3:] = 8      # bed (7, thing): left to the instance map
    ins = np.zeros((4, 6, 3), np.uint8)
    ins[2:, 3:5] = (1, 1, 0)   # instance class 1 -> bed (7)
    ins[2:, 5] = (1, 2, 0)     # a second bed
    ins[0, 0] = (100, 3, 0)    # instance class 100 -> flag (149), pasted over the wall
    _save(str(base / f"annotations/{split}/{stem}.png"), sem)
    _save(str(base / f"annotations_instance/{split}/{stem}.png"), ins)
    return stem


def test_ade20k_panoptic_conversion(tmp_path):
    mod = _script("prepare_ade20k_pan_seg")
    base = tmp_path / "ADEChallengeData2016"
    stem = _ade_raw(base)
    sem, ins = (np.asarray(Image.open(base / f"{d}/validation/{stem}.png")) for d in ("annotations", "annotations_instance"))
    cats = {c["id"]: c for c in mod.panoptic_categories()}
    pan, segments = mod.convert_image(sem, ins, cats, mod.instance_to_semantic_map())
    ids = rgb2id(pan)
    by_cat = {}
    for s in segments:
        by_cat.setdefault(s["category_id"], []).append(s)
        # as the original, a stuff segment's area is counted before things are pasted over it
        assert (ids == s["id"]).sum() == s["area"] - (s["category_id"] == 0)
    assert sorted(by_cat) == [0, 2, 7, 149] and len(by_cat[7]) == 2
    assert by_cat[0][0]["area"] == 12 and by_cat[149][0]["bbox"] == [0, 0, 1, 1]
    assert len({s["id"] for s in segments}) == len(segments) and (ids != 0).all()
    assert sum(c["isthing"] for c in cats.values()) == 100 and cats[48]["color"] == [140, 140, 200]
    # the whole split
    os.makedirs(base / "images/training")
    os.makedirs(base / "annotations/training")
    os.makedirs(base / "annotations_instance/training")
    mod.convert_split(str(base), "val", "validation")
    data = json.loads((base / "ade20k_panoptic_val.json").read_text())
    assert data["annotations"][0]["image_id"] == stem and len(data["categories"]) == 150
    assert (base / f"ade20k_panoptic_val/{stem}.png").is_file()


def test_ade20k_instance_conversion(tmp_path):
    import pycocotools.mask as mask_util

    mod = _script("prepare_ade20k_ins_seg")
    base = tmp_path / "ADEChallengeData2016"
    stem = _ade_raw(base)
    assert mod.convert_split(str(base), "val", "validation") == 1
    data = json.loads((base / "ade20k_instance_val.json").read_text())
    assert len(data["categories"]) == 100 and data["images"][0]["id"] == stem
    anns = sorted(data["annotations"], key=lambda a: a["category_id"])
    assert [a["category_id"] for a in anns] == [7, 7, 149]
    assert [a["area"] for a in anns] == [4, 2, 1] and anns[0]["bbox"] == [3, 2, 2, 2]
    assert mask_util.decode(anns[1]["segmentation"])[:, 5].sum() == 2


@pytest.mark.parametrize("name,outputs", [
    ("prepare_ade20k_pan_seg", ["ade20k_panoptic_train.json", "ade20k_panoptic_val.json"]),
    ("prepare_ade20k_ins_seg", ["ade20k_instance_train.json", "ade20k_instance_val.json"]),
])
def test_ade20k_converters_command_line_converts_both_splits(tmp_path, capsys, name, outputs):
    base = tmp_path / "ADEChallengeData2016"
    _ade_raw(base, "training", "ADE_train_00000001")
    _ade_raw(base, "validation", "ADE_val_00000001")
    _ade_raw(base, "validation", "ADE_val_00000002")
    assert _script(name).main(["--root", str(tmp_path)]) == {"train": 1, "val": 2}
    assert "{'train': 1, 'val': 2}" in capsys.readouterr().out
    assert all((base / f).is_file() for f in outputs)


def test_ade20k_full_conversion(tmp_path):
    mod = _script("prepare_ade20k_full_sem_seg")
    cats = load_categories("ade20k_full_847")
    wall, building = cats[0], cats[1]   # ids 2978 -> 0, 312 -> 1
    folder = "ADE20K_2021_17_01/images/ADE/validation/x"
    stem = "ADE_val_00000001"
    seg = np.zeros((4, 4, 3), np.uint8)

    def rgb(obj_id):
        return ((obj_id // 256) * 10, obj_id % 256, 0)

    seg[:2] = rgb(wall["id"])
    seg[2:, :2] = rgb(building["id"])
    seg[2:, 2:] = rgb(1)                 # a class outside the 847 -> 65535
    _save(str(tmp_path / folder / f"{stem}.jpg"), np.zeros((4, 4, 3), np.uint8))
    _save(str(tmp_path / folder / f"{stem}_seg.png"), seg)
    with open(tmp_path / "ADE20K_2021_17_01/index_ade20k.pkl", "wb") as f:
        pickle.dump({"folder": [folder], "filename": [f"{stem}.jpg"]}, f)
    assert mod.main(["--root", str(tmp_path)]) == {"training": 0, "validation": 1}
    out = np.asarray(Image.open(tmp_path / f"ADE20K_2021_17_01/annotations_detectron2/validation/{stem}.tif"))
    assert out.dtype == np.uint16
    assert (out[:2] == 0).all() and (out[2:, :2] == 1).all() and (out[2:, 2:] == 65535).all()
    img, lab = mod.resize_pair(np.zeros((600, 1000, 3), np.uint8), np.zeros((600, 1000), np.int32))
    assert img.shape[:2] == lab.shape == (512, 853)
