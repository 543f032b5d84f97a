"""The quickstart's COCO panoptic and COCO instance files agree with its semantic labels."""
import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_util

from segcore.data.datasets.quickstart import load_quickstart_categories
from segcore.quickstart import generate_quickstart


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("qs")
    generate_quickstart(str(root), num_train=3, num_val=2, size=96)
    return root / "quickstart_ade"


def _rgb2id(png):
    a = np.asarray(png).astype(np.int64)
    return a[..., 0] + 256 * a[..., 1] + 256 * 256 * a[..., 2]


@pytest.mark.parametrize("split,short", [("training", "train"), ("validation", "val")])
def test_panoptic_segments_match_semantic_labels(dataset, split, short):
    pan = json.loads((dataset / f"quickstart_panoptic_{short}.json").read_text())
    cats = {c["id"]: c for c in pan["categories"]}
    assert [c["name"] for c in pan["categories"]] == [c["name"] for c in load_quickstart_categories()]
    assert len(pan["annotations"]) == len(pan["images"]) == (3 if short == "train" else 2)
    things_seen = 0
    for ann in pan["annotations"]:
        ids = _rgb2id(Image.open(dataset / f"quickstart_panoptic_{short}" / ann["file_name"]))
        label = np.asarray(Image.open(dataset / "annotations_detectron2" / split / ann["file_name"]))
        assert ids.shape == label.shape
        assert sorted(set(np.unique(ids)) - {0}) == sorted(s["id"] for s in ann["segments_info"])
        assert ((ids == 0) == (label == 255)).all()  # void exactly where the semantic label is unlabelled
        for s in ann["segments_info"]:
            m = ids == s["id"]
            assert m.sum() == s["area"] and (label[m] == s["category_id"]).all()
            things_seen += cats[s["category_id"]]["isthing"]
        stuff = [s["category_id"] for s in ann["segments_info"] if not cats[s["category_id"]]["isthing"]]
        assert len(stuff) == len(set(stuff))  # one segment per stuff class
    assert things_seen > 0


def test_instances_are_the_thing_segments(dataset):
    pan = json.loads((dataset / "quickstart_panoptic_val.json").read_text())
    ins = json.loads((dataset / "quickstart_instance_val.json").read_text())
    assert all(c["isthing"] for c in ins["categories"]) and len(ins["categories"]) == 5
    for ann in pan["annotations"]:
        ids = _rgb2id(Image.open(dataset / "quickstart_panoptic_val" / ann["file_name"]))
        inst = [a for a in ins["annotations"] if a["image_id"] == ann["image_id"]]
        things = [s for s in ann["segments_info"] if s["category_id"] in {c["id"] for c in ins["categories"]}]
        assert len(inst) == len(things)
        for a, s in zip(inst, things):
            decoded = mask_util.decode(a["segmentation"]).astype(bool)
            assert (decoded == (ids == s["id"])).all() and a["area"] == s["area"]
