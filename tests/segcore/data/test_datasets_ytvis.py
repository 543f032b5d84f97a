"""The YouTube-VIS / OVIS datasets: registration under the original names and layouts, and the
YouTube-VIS json loader (per-frame annotations of every track, absent frames skipped, RLE and
polygons, contiguous category ids)."""
import json
import os

import numpy as np
import pycocotools.mask as mask_util
import pytest

from segcore.data import DatasetCatalog, MetadataCatalog
from segcore.data.datasets import load_categories, load_ytvis_json
from segcore.data.datasets.ytvis import YTVIS_SPLITS
from segcore.structures.boxes import BoxMode


def test_the_original_names_are_registered_with_their_layout_and_classes():
    for name in ("ytvis_2019_train", "ytvis_2019_val", "ytvis_2021_train", "ytvis_2021_val", "ovis_train", "ovis_val"):
        assert name in DatasetCatalog and name in YTVIS_SPLITS
        meta = MetadataCatalog.get(name)
        assert meta.evaluator_type == "ytvis"
    assert MetadataCatalog.get("ytvis_2019_val").json_file.endswith(os.path.join("ytvis_2019", "valid.json"))
    assert MetadataCatalog.get("ovis_train").image_root.endswith(os.path.join("ovis", "train"))
    assert len(MetadataCatalog.get("ytvis_2019_train").thing_classes) == 40
    assert len(MetadataCatalog.get("ytvis_2021_train").thing_classes) == 40
    assert len(MetadataCatalog.get("ovis_train").thing_classes) == 25
    assert MetadataCatalog.get("ytvis_2019_train").thing_dataset_id_to_contiguous_id[1] == 0


def _write_ytvis(root, categories):
    folder = root / "ytvis_2019"
    (folder / "train" / "JPEGImages" / "v1").mkdir(parents=True)
    mask = np.zeros((20, 30), np.uint8)
    mask[2:8, 3:12] = 1
    flat = mask.flatten(order="F")
    changes = np.flatnonzero(np.diff(np.r_[0, flat, 2 * (1 - flat[-1])]))
    counts = np.diff(np.r_[0, changes]).tolist()  # uncompressed RLE (runs from zeros)
    rle = mask_util.frPyObjects({"size": [20, 30], "counts": counts}, 20, 30)
    assert np.array_equal(mask_util.decode(rle), mask)
    data = {"videos": [{"id": 7, "width": 30, "height": 20, "length": 3,
                        "file_names": ["v1/00000.jpg", "v1/00001.jpg", "v1/00002.jpg"]}],
            "categories": categories,
            "annotations": [
                {"id": 11, "video_id": 7, "category_id": 3, "iscrowd": 0,
                 "segmentations": [{"size": [20, 30], "counts": counts}, None, [[10, 10, 20, 10, 20, 18, 10, 18]]],
                 "bboxes": [[3, 2, 9, 6], None, [10, 10, 10, 8]], "areas": [54, None, 80]},
                {"id": 12, "video_id": 7, "category_id": 40, "iscrowd": 1,
                 "segmentations": [None, [[0, 0, 4, 0, 4, 4]], [[0, 0, 1, 0]]],  # the last polygon is degenerate
                 "bboxes": [None, [0, 0, 4, 4], [0, 0, 1, 1]], "areas": [None, 8, 1]}]}
    (folder / "train.json").write_text(json.dumps(data))
    return mask


def test_the_builtin_loader_reads_the_youtube_vis_layout(tmp_path, monkeypatch):
    mask = _write_ytvis(tmp_path, load_categories("ytvis_2019"))
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    (video,) = DatasetCatalog.get("ytvis_2019_train")
    assert video["video_id"] == 7 and video["length"] == 3 and (video["height"], video["width"]) == (20, 30)
    assert video["file_names"][1] == os.path.join(str(tmp_path), "ytvis_2019", "train", "JPEGImages", "v1", "00001.jpg")
    frame0, frame1, frame2 = video["annotations"]
    assert [(a["id"], a["category_id"], a["iscrowd"]) for a in frame0] == [(11, 2, 0)]  # contiguous: id 3 -> 2
    assert np.array_equal(mask_util.decode(frame0[0]["segmentation"]), mask)
    assert frame0[0]["bbox"] == [3, 2, 9, 6] and frame0[0]["bbox_mode"] == BoxMode.XYWH_ABS
    assert [(a["id"], a["category_id"], a["iscrowd"]) for a in frame1] == [(12, 39, 1)]
    assert [a["id"] for a in frame2] == [11]  # track 12's degenerate polygon leaves it out of frame 2
    assert frame2[0]["segmentation"] == [[10, 10, 20, 10, 20, 18, 10, 18]]


def test_the_loader_names_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="YouTube-VIS annotation file"):
        load_ytvis_json(str(tmp_path / "missing.json"), str(tmp_path))
    (tmp_path / "coco.json").write_text(json.dumps({"images": [], "annotations": []}))
    with pytest.raises(ValueError, match="not a YouTube-VIS json"):
        load_ytvis_json(str(tmp_path / "coco.json"), str(tmp_path))
