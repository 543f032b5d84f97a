"""DatasetCatalog / MetadataCatalog, load_sem_seg, built-in ADE20K registration, mapper registry."""
import os

import numpy as np
import pytest
from PIL import Image

from segcore.config import get_cfg
from segcore.data import (
    DATASET_MAPPER_REGISTRY,
    DatasetCatalog,
    MetadataCatalog,
    UnknownDatasetError,
    build_dataset_mapper,
    get_detection_dataset_dicts,
)
from segcore.data.datasets import load_categories, load_sem_seg, register_sem_seg_dataset


@pytest.fixture
def temp_name(request):
    """A dataset name unique to the test, unregistered afterwards."""
    name = "_test_" + request.node.name
    yield name
    for catalog in (DatasetCatalog, MetadataCatalog):
        if name in catalog:
            catalog.remove(name)


def _write_pair(image_dir, gt_dir, stem, size=(6, 8), label=1):
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(gt_dir, exist_ok=True)
    Image.fromarray(np.full(size + (3,), 100, np.uint8)).save(os.path.join(image_dir, stem + ".jpg"))
    Image.fromarray(np.full(size, label, np.uint8)).save(os.path.join(gt_dir, stem + ".png"))


def test_dataset_catalog_register_get_errors(temp_name):
    DatasetCatalog.register(temp_name, lambda: [{"file_name": "a.jpg"}])
    assert temp_name in DatasetCatalog.list()
    assert DatasetCatalog.get(temp_name) == [{"file_name": "a.jpg"}]
    with pytest.raises(ValueError, match="already registered"):
        DatasetCatalog.register(temp_name, lambda: [])
    with pytest.raises(KeyError) as e:
        DatasetCatalog.get(temp_name + "_missing")
    assert temp_name + "_missing" in str(e.value) and temp_name in str(e.value)
    with pytest.raises(TypeError):
        DatasetCatalog.register(temp_name + "_2", [1, 2])
    DatasetCatalog.remove(temp_name)
    assert temp_name not in DatasetCatalog.list()


def test_an_unknown_dataset_is_named_with_the_registered_ones(temp_name):
    DatasetCatalog.register(temp_name, lambda: [])
    with pytest.raises(UnknownDatasetError) as e:
        DatasetCatalog.check_registered([temp_name, "ade20k_sem_seg_val", "ade20k_sem_seg_vall"], "DATASETS.TEST")
    msg = str(e.value)
    assert isinstance(e.value, KeyError) and e.value.name == "ade20k_sem_seg_vall"
    assert msg.startswith("Dataset 'ade20k_sem_seg_vall' (named by DATASETS.TEST) is not registered")
    assert temp_name in msg and "ade20k_sem_seg_val," in msg
    # the metadata of a name nobody registered says so, where it used to say only that it is empty
    with pytest.raises(AttributeError) as e:
        MetadataCatalog.get("ade20k_sem_seg_vall").ignore_label
    assert "is not registered" in str(e.value) and "ade20k_sem_seg_val," in str(e.value)
    MetadataCatalog.remove("ade20k_sem_seg_vall")


def test_dataset_returning_non_list_is_an_error(temp_name):
    DatasetCatalog.register(temp_name, lambda: None)
    with pytest.raises(TypeError, match=temp_name):
        DatasetCatalog.get(temp_name)


def test_metadata_set_get_and_errors(temp_name):
    meta = MetadataCatalog.get(temp_name)
    assert MetadataCatalog.get(temp_name) is meta
    meta.set(ignore_label=255, stuff_classes=["a", "b"])
    assert meta.ignore_label == 255 and meta.get("stuff_classes") == ["a", "b"]
    assert meta.get("absent", 7) == 7
    meta.ignore_label = 255  # same value: allowed
    meta.stuff_colors = np.array([[1, 2, 3]])
    meta.stuff_colors = np.array([[1, 2, 3]])  # equal array: allowed
    with pytest.raises(ValueError, match="ignore_label"):
        meta.ignore_label = 0
    with pytest.raises(AttributeError) as e:
        meta.thing_classes
    assert temp_name in str(e.value) and "ignore_label" in str(e.value)
    assert meta.as_dict()["stuff_classes"] == ["a", "b"]


def test_load_sem_seg_pairs_by_stem_sorted(tmp_path):
    img, gt = str(tmp_path / "img"), str(tmp_path / "gt")
    for stem in ["b", "a", "c"]:
        _write_pair(img, gt, stem)
    _write_pair(str(tmp_path / "unused"), gt, "only_gt")  # annotation without image: skipped
    dicts = load_sem_seg(gt, img)
    assert [os.path.basename(d["file_name"]) for d in dicts] == ["a.jpg", "b.jpg", "c.jpg"]
    assert [os.path.basename(d["sem_seg_file_name"]) for d in dicts] == ["a.png", "b.png", "c.png"]
    assert all(os.path.dirname(d["sem_seg_file_name"]) == gt for d in dicts)


def test_load_sem_seg_errors(tmp_path):
    img, gt = str(tmp_path / "img"), str(tmp_path / "gt")
    missing = str(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError) as e:
        load_sem_seg(gt, missing)
    assert missing in str(e.value) and "DETECTRON2_DATASETS" in str(e.value) and "datasets/README.md" in str(e.value)
    os.makedirs(img)
    os.makedirs(gt)
    with pytest.raises(ValueError, match="No '\\*jpg' images"):
        load_sem_seg(gt, img)
    _write_pair(img, gt, "ok")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(os.path.join(img, "lonely.jpg"))
    with pytest.raises(ValueError, match="lonely.jpg"):
        load_sem_seg(gt, img)


def test_register_sem_seg_dataset_is_lazy_and_sets_metadata(tmp_path, temp_name):
    img, gt = str(tmp_path / "img"), str(tmp_path / "gt")
    register_sem_seg_dataset(temp_name, img, gt, stuff_classes=["x", "y"], stuff_colors=[[1, 2, 3], [4, 5, 6]])
    meta = MetadataCatalog.get(temp_name)
    assert meta.stuff_classes == ["x", "y"] and meta.ignore_label == 255 and meta.evaluator_type == "sem_seg"
    assert meta.image_root == img and meta.sem_seg_root == gt
    with pytest.raises(FileNotFoundError, match="img"):
        DatasetCatalog.get(temp_name)  # folders absent: fails only when used
    _write_pair(img, gt, "one")
    assert len(DatasetCatalog.get(temp_name)) == 1


def test_get_detection_dataset_dicts_concatenates_and_rejects_empty(temp_name):
    DatasetCatalog.register(temp_name, lambda: [{"file_name": "a"}, {"file_name": "b"}])
    DatasetCatalog.register(temp_name + "_e", lambda: [])
    try:
        assert len(get_detection_dataset_dicts([temp_name, temp_name])) == 4
        with pytest.raises(ValueError, match=temp_name + "_e"):
            get_detection_dataset_dicts([temp_name, temp_name + "_e"])
        with pytest.raises(ValueError):
            get_detection_dataset_dicts([])
    finally:
        DatasetCatalog.remove(temp_name + "_e")


def test_builtin_ade20k_registration():
    table = load_categories("ade20k_150")
    for split, folder in (("train", "training"), ("val", "validation")):
        name = f"ade20k_sem_seg_{split}"
        assert name in DatasetCatalog.list()
        meta = MetadataCatalog.get(name)
        assert meta.stuff_classes == [c["name"] for c in table]
        assert len(meta.stuff_classes) == 150 and meta.stuff_classes[6] == "road, route"
        assert meta.stuff_colors[0] == [120, 120, 120]
        assert meta.ignore_label == 255 and meta.evaluator_type == "sem_seg"
        assert meta.image_root.endswith(os.path.join("ADEChallengeData2016", "images", folder))
        assert meta.sem_seg_root.endswith(os.path.join("ADEChallengeData2016", "annotations_detectron2", folder))


def test_load_categories_unknown_table_lists_available():
    with pytest.raises(KeyError, match="ade20k_150"):
        load_categories("no_such_table")


def test_build_dataset_mapper_unknown_name_lists_registered():
    cfg = get_cfg()
    cfg.INPUT.DATASET_MAPPER_NAME = "no_such_mapper"

    @DATASET_MAPPER_REGISTRY.register("_test_mapper")
    def _mapper(cfg, is_train):
        return ("built", is_train)

    try:
        with pytest.raises(KeyError) as e:
            build_dataset_mapper(cfg, True)
        assert "no_such_mapper" in str(e.value) and "_test_mapper" in str(e.value)
        cfg.INPUT.DATASET_MAPPER_NAME = "_test_mapper"
        assert build_dataset_mapper(cfg, False) == ("built", False)
    finally:
        DATASET_MAPPER_REGISTRY._obj_map.pop("_test_mapper")
