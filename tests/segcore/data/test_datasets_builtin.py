"""Built-in dataset registrations, loaded from generated miniature folders in their real layouts."""
import json
import os

import numpy as np
import pytest
from PIL import Image

import segcore.data  # noqa: F401  (registers the built-in datasets)
from segcore.data import DatasetCatalog, MetadataCatalog
from segcore.data.datasets.categories import load_categories
from segcore.data.datasets.panoptic_ids import id2rgb
from segcore.structures.boxes import BoxMode


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    return tmp_path


def _img(path, h=6, w=8, mode="RGB", array=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    arr = array if array is not None else np.zeros((h, w, 3) if mode == "RGB" else (h, w), np.uint8)
    Image.fromarray(arr).save(path)


def _json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f)


ALL_NAMES = [
    "coco_2017_train", "coco_2017_val", "coco_2017_train_panoptic", "coco_2017_val_panoptic",
    "coco_2017_train_panoptic_with_sem_seg", "coco_2017_val_panoptic_with_sem_seg",
    "coco_2017_train_stuff_10k_sem_seg", "coco_2017_test_stuff_10k_sem_seg",
    "ade20k_panoptic_train", "ade20k_panoptic_val", "ade20k_instance_train", "ade20k_instance_val",
    "ade20k_full_sem_seg_train", "ade20k_full_sem_seg_val",
    "cityscapes_fine_sem_seg_train", "cityscapes_fine_sem_seg_val", "cityscapes_fine_sem_seg_test",
    "cityscapes_fine_instance_seg_train", "cityscapes_fine_instance_seg_val", "cityscapes_fine_instance_seg_test",
    "cityscapes_fine_panoptic_train", "cityscapes_fine_panoptic_val",
    "mapillary_vistas_sem_seg_train", "mapillary_vistas_sem_seg_val",
    "mapillary_vistas_panoptic_train", "mapillary_vistas_panoptic_val",
]


def test_all_original_names_registered():
    missing = [n for n in ALL_NAMES if n not in DatasetCatalog]
    assert not missing


@pytest.mark.parametrize("name,expected_path", [
    ("coco_2017_val", "coco/annotations/instances_val2017.json"),
    ("coco_2017_val_panoptic", "coco/annotations/panoptic_val2017.json"),
    ("ade20k_panoptic_val", "ADEChallengeData2016/ade20k_panoptic_val.json"),
    ("cityscapes_fine_sem_seg_val", "cityscapes/leftImg8bit/val"),
    ("mapillary_vistas_sem_seg_val", "mapillary_vistas/validation/images"),
    ("ade20k_full_sem_seg_val", "ADE20K_2021_17_01/images_detectron2/validation"),
    ("coco_2017_test_stuff_10k_sem_seg", "coco/coco_stuff_10k/images_detectron2/test"),
])
def test_missing_folder_error_names_path_under_current_root(root, name, expected_path):
    with pytest.raises(FileNotFoundError) as e:
        DatasetCatalog.get(name)
    assert os.path.normpath(str(root / expected_path)) in os.path.normpath(str(e.value))


def test_coco_instances(root):
    cats = load_categories("coco_instance")
    _img(str(root / "coco/val2017/000000000001.jpg"))
    _img(str(root / "coco/val2017/000000000002.jpg"))
    _json(str(root / "coco/annotations/instances_val2017.json"), {
        "images": [{"id": 1, "file_name": "000000000001.jpg", "height": 6, "width": 8},
                   {"id": 2, "file_name": "000000000002.jpg", "height": 6, "width": 8}],
        "categories": [{"id": c["id"], "name": c["name"]} for c in cats],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 90, "bbox": [1, 1, 3, 2], "area": 6, "iscrowd": 0,
             "segmentation": [[1, 1, 4, 1, 4, 3, 1, 3]]},
            {"id": 2, "image_id": 1, "category_id": 13, "bbox": [0, 0, 2, 2], "area": 4, "iscrowd": 1,
             "segmentation": {"size": [6, 8], "counts": [0, 2, 4, 2, 40]}},
            {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1], "area": 1, "iscrowd": 0,
             "segmentation": [[0, 0, 1, 1]]},  # too few points: dropped
        ],
    })
    dicts = DatasetCatalog.get("coco_2017_val")
    assert [d["image_id"] for d in dicts] == [1, 2]
    assert dicts[0]["file_name"] == str(root / "coco/val2017/000000000001.jpg")
    a0, a1 = dicts[0]["annotations"]
    assert a0["category_id"] == 79 and a0["bbox_mode"] == BoxMode.XYWH_ABS and a0["bbox"] == [1, 1, 3, 2]
    assert a0["segmentation"] == [[1, 1, 4, 1, 4, 3, 1, 3]]
    assert a1["category_id"] == 11 and a1["iscrowd"] == 1 and isinstance(a1["segmentation"]["counts"], bytes)
    assert dicts[1]["annotations"] == []
    meta = MetadataCatalog.get("coco_2017_val")
    assert meta.evaluator_type == "coco" and len(meta.thing_classes) == 80 and len(meta.thing_colors) == 80
    assert meta.thing_dataset_id_to_contiguous_id[90] == 79 and meta.thing_dataset_id_to_contiguous_id[13] == 11


def _coco_panoptic(root):
    pan = np.zeros((6, 8), np.int64)
    pan[:3] = 5       # person (id 1)
    pan[3:, :4] = 7   # wall-other-merged (id 199, stuff)
    _img(str(root / "coco/val2017/000000000009.jpg"))
    _img(str(root / "coco/panoptic_val2017/000000000009.png"), array=id2rgb(pan))
    _img(str(root / "coco/panoptic_semseg_val2017/000000000009.png"), mode="L")
    _json(str(root / "coco/annotations/panoptic_val2017.json"), {
        "annotations": [{"image_id": 9, "file_name": "000000000009.png", "segments_info": [
            {"id": 5, "category_id": 1, "iscrowd": 0, "area": 24, "bbox": [0, 0, 8, 3]},
            {"id": 7, "category_id": 199, "iscrowd": 0, "area": 12, "bbox": [0, 3, 4, 3]}]}],
        "categories": load_categories("coco_panoptic"),
    })


def test_coco_panoptic_standard_and_with_sem_seg(root):
    _coco_panoptic(root)
    (d,) = DatasetCatalog.get("coco_2017_val_panoptic")
    assert d["image_id"] == 9 and d["file_name"].endswith("coco/val2017/000000000009.jpg")
    assert d["pan_seg_file_name"].endswith("coco/panoptic_val2017/000000000009.png")
    assert "sem_seg_file_name" not in d
    segs = {s["id"]: s for s in d["segments_info"]}
    assert (segs[5]["category_id"], segs[5]["isthing"]) == (0, True)
    assert (segs[7]["category_id"], segs[7]["isthing"]) == (131, False)
    (d2,) = DatasetCatalog.get("coco_2017_val_panoptic_with_sem_seg")
    assert d2["sem_seg_file_name"].endswith("coco/panoptic_semseg_val2017/000000000009.png")
    assert [s["category_id"] for s in d2["segments_info"]] == [0, 131]

    std = MetadataCatalog.get("coco_2017_val_panoptic")
    m2f = MetadataCatalog.get("coco_2017_val_panoptic_with_sem_seg")
    for m in (std, m2f):
        assert m.evaluator_type == "coco_panoptic_seg" and m.label_divisor == 1000 and m.ignore_label == 255
        assert len(m.stuff_classes) == 133 and len(m.thing_dataset_id_to_contiguous_id) == 80
        assert m.panoptic_json.endswith("coco/annotations/panoptic_val2017.json")
    assert len(std.thing_classes) == 133 and len(std.stuff_dataset_id_to_contiguous_id) == 53
    assert sorted(std.stuff_dataset_id_to_contiguous_id.values()) == list(range(80, 133))
    assert len(m2f.thing_classes) == 80 and m2f.stuff_dataset_id_to_contiguous_id[1] == 0
    assert m2f.stuff_dataset_id_to_contiguous_id[200] == 132


def test_panoptic_unknown_category_is_named(root):
    _coco_panoptic(root)
    path = root / "coco/annotations/panoptic_val2017.json"
    data = json.loads(path.read_text())
    data["annotations"][0]["segments_info"][0]["category_id"] = 12  # not a COCO category
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="category_id 12"):
        DatasetCatalog.get("coco_2017_val_panoptic")


def test_coco_stuff_10k(root):
    for split in ("train", "test"):
        _img(str(root / f"coco/coco_stuff_10k/images_detectron2/{split}/a.jpg"))
        _img(str(root / f"coco/coco_stuff_10k/annotations_detectron2/{split}/a.png"), mode="L")
    assert len(DatasetCatalog.get("coco_2017_test_stuff_10k_sem_seg")) == 1
    m = MetadataCatalog.get("coco_2017_train_stuff_10k_sem_seg")
    assert len(m.stuff_classes) == 171 and m.ignore_label == 255 and m.evaluator_type == "sem_seg"
    assert m.stuff_dataset_id_to_contiguous_id[182] == 170 and m.stuff_dataset_id_to_contiguous_id[13] == 11


def test_ade20k_panoptic_and_instance(root):
    base = root / "ADEChallengeData2016"
    _img(str(base / "images/validation/ADE_val_00000001.jpg"))
    _img(str(base / "annotations_detectron2/validation/ADE_val_00000001.png"), mode="L")
    _img(str(base / "ade20k_panoptic_val/ADE_val_00000001.png"))
    _json(str(base / "ade20k_panoptic_val.json"), {"annotations": [{
        "image_id": "ADE_val_00000001", "file_name": "ADE_val_00000001.png",
        "segments_info": [{"id": 1, "category_id": 7, "iscrowd": 0, "area": 1, "bbox": [0, 0, 1, 1]},
                          {"id": 2, "category_id": 0, "iscrowd": 0, "area": 1, "bbox": [0, 0, 1, 1]}]}]})
    (d,) = DatasetCatalog.get("ade20k_panoptic_val")
    assert d["image_id"] == "ADE_val_00000001"
    assert [(s["category_id"], s["isthing"]) for s in d["segments_info"]] == [(7, True), (0, False)]
    assert d["sem_seg_file_name"].endswith("annotations_detectron2/validation/ADE_val_00000001.png")
    m = MetadataCatalog.get("ade20k_panoptic_val")
    assert m.evaluator_type == "ade20k_panoptic_seg" and len(m.thing_classes) == 100 and len(m.stuff_classes) == 150
    assert m.stuff_dataset_id_to_contiguous_id == {i: i for i in range(150)}

    ins_cats = load_categories("ade20k_instance_100")
    _json(str(base / "ade20k_instance_val.json"), {
        "images": [{"id": "ADE_val_00000001", "file_name": "ADE_val_00000001.jpg", "height": 6, "width": 8}],
        "categories": ins_cats,
        "annotations": [{"id": 1, "image_id": "ADE_val_00000001", "category_id": 149, "iscrowd": 0,
                         "bbox": [0, 0, 2, 2], "area": 4, "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2]]}]})
    (d,) = DatasetCatalog.get("ade20k_instance_val")
    assert d["annotations"][0]["category_id"] == 99
    m = MetadataCatalog.get("ade20k_instance_val")
    assert m.evaluator_type == "coco" and m.thing_classes[1] == "windowpane"
    assert m.thing_dataset_id_to_contiguous_id[7] == 0


def test_ade20k_full_reads_uint16_tif(root):
    base = root / "ADE20K_2021_17_01"
    _img(str(base / "images_detectron2/validation/ADE_val_00000001.jpg"))
    lab = np.full((6, 8), 65535, np.uint16)
    lab[0, 0] = 846
    os.makedirs(base / "annotations_detectron2/validation")
    Image.fromarray(lab).save(str(base / "annotations_detectron2/validation/ADE_val_00000001.tif"))
    (d,) = DatasetCatalog.get("ade20k_full_sem_seg_val")
    from segcore.data.detection_utils import read_sem_seg

    arr = read_sem_seg(d["sem_seg_file_name"])
    assert arr.dtype == np.uint16 and arr[0, 0] == 846 and arr[1, 1] == 65535
    m = MetadataCatalog.get("ade20k_full_sem_seg_val")
    assert len(m.stuff_classes) == 847 and m.ignore_label == 65535 and m.stuff_classes[0] == "wall"


def _cityscapes(root):
    stem = "frankfurt_000000_000294"
    _img(str(root / f"cityscapes/leftImg8bit/val/frankfurt/{stem}_leftImg8bit.png"))
    _img(str(root / f"cityscapes/gtFine/val/frankfurt/{stem}_gtFine_labelTrainIds.png"), mode="L")
    inst = np.full((6, 8), 7, np.uint16)  # road (16-bit PNG, as the release)
    inst[0:2, 0:3] = 26000   # car instance 0
    inst[3:5, 4:8] = 24001   # person instance 1
    inst[5, 0:4] = 26        # car crowd region ...
    inst[2, 5:8] = 26        # ... in two parts
    inst[4, 0:2] = 29000     # caravan: not evaluated
    Image.fromarray(inst).save(str(root / f"cityscapes/gtFine/val/frankfurt/{stem}_gtFine_instanceIds.png"))
    return stem


def test_cityscapes_semantic_and_instances(root):
    stem = _cityscapes(root)
    (d,) = DatasetCatalog.get("cityscapes_fine_sem_seg_val")
    assert d["sem_seg_file_name"].endswith(f"{stem}_gtFine_labelTrainIds.png") and (d["height"], d["width"]) == (6, 8)
    (d,) = DatasetCatalog.get("cityscapes_fine_instance_seg_val")
    assert d["image_id"] == f"{stem}_leftImg8bit.png"
    got = sorted((a["category_id"], bool(a["iscrowd"]), a["bbox"]) for a in d["annotations"])
    # pixel value 26 (< 1000) is a crowd region of "car"; caravan (29) is not evaluated
    assert got == [(0, False, [4.0, 3.0, 7.0, 4.0]), (2, False, [0.0, 0.0, 2.0, 1.0]), (2, True, [0.0, 2.0, 7.0, 5.0])]
    import pycocotools.mask as mask_util

    person = [a for a in d["annotations"] if a["category_id"] == 0][0]
    assert mask_util.decode(person["segmentation"]).sum() == 8 and person["bbox_mode"] == BoxMode.XYXY_ABS
    m = MetadataCatalog.get("cityscapes_fine_instance_seg_val")
    assert m.evaluator_type == "cityscapes_instance" and m.thing_classes[0] == "person" and len(m.stuff_classes) == 19
    assert MetadataCatalog.get("cityscapes_fine_sem_seg_val").evaluator_type == "cityscapes_sem_seg"


def test_cityscapes_panoptic(root):
    stem = _cityscapes(root)
    _img(str(root / f"cityscapes/gtFine/cityscapes_panoptic_val/{stem}_gtFine_panoptic.png"))
    _json(str(root / "cityscapes/gtFine/cityscapes_panoptic_val.json"), {"annotations": [{
        "image_id": stem, "file_name": f"{stem}_gtFine_panoptic.png",
        "segments_info": [{"id": 7, "category_id": 7, "iscrowd": 0, "area": 1, "bbox": [0, 0, 1, 1]},
                          {"id": 26000, "category_id": 26, "iscrowd": 0, "area": 1, "bbox": [0, 0, 1, 1]}]}]})
    (d,) = DatasetCatalog.get("cityscapes_fine_panoptic_val")
    assert d["image_id"] == stem
    assert d["sem_seg_file_name"] == str(root / f"cityscapes/gtFine/val/frankfurt/{stem}_gtFine_labelTrainIds.png")
    assert [(s["category_id"], s["isthing"]) for s in d["segments_info"]] == [(0, False), (13, True)]
    m = MetadataCatalog.get("cityscapes_fine_panoptic_val")
    assert m.evaluator_type == "cityscapes_panoptic_seg" and m.gt_dir.endswith(os.path.join("cityscapes", "gtFine", "val"))
    assert m.thing_dataset_id_to_contiguous_id == {24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}


def test_mapillary_vistas(root):
    base = root / "mapillary_vistas/validation"
    _img(str(base / "images/abc.jpg"))
    _img(str(base / "labels/abc.png"), mode="L")
    _img(str(base / "panoptic/abc.png"))
    _json(str(base / "panoptic/panoptic_2018.json"), {"annotations": [{
        "image_id": "abc", "file_name": "abc.png",
        "segments_info": [{"id": 3, "category_id": 1, "iscrowd": 0, "area": 1, "bbox": [0, 0, 1, 1]},
                          {"id": 4, "category_id": 65, "iscrowd": 0, "area": 1, "bbox": [0, 0, 1, 1]}]}]})
    (d,) = DatasetCatalog.get("mapillary_vistas_sem_seg_val")
    assert d["sem_seg_file_name"].endswith("labels/abc.png")
    m = MetadataCatalog.get("mapillary_vistas_sem_seg_val")
    assert len(m.stuff_classes) == 65 and m.ignore_label == 65 and m.stuff_classes[0] == "Bird"
    (d,) = DatasetCatalog.get("mapillary_vistas_panoptic_val")
    assert d["image_id"] == "abc" and [s["category_id"] for s in d["segments_info"]] == [0, 64]
    assert d["sem_seg_file_name"].endswith("labels/abc.png")
    m = MetadataCatalog.get("mapillary_vistas_panoptic_val")
    assert m.evaluator_type == "mapillary_vistas_panoptic_seg" and m.ignore_label == 65 and len(m.thing_classes) == 65
    assert len(m.thing_dataset_id_to_contiguous_id) == 37 and m.stuff_dataset_id_to_contiguous_id[65] == 64
