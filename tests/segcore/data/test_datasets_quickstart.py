"""The quickstart datasets registered by ``import segcore.data``: read from the generated files
(the ``quickstart_root`` fixture), without importing the generator."""
import json
import os
import subprocess
import sys

import pytest

from segcore.data import DatasetCatalog, MetadataCatalog
from segcore.data.datasets.quickstart import (
    DATASET_DIRNAME,
    GENERATE_COMMAND,
    QUICKSTART_SEM_SEG_SPLITS,
    VIDEO_DATASET_DIRNAME,
    load_quickstart_categories,
    register_quickstart_datasets,
)
from tests.paths import REPO_ROOT

CATEGORIES = load_quickstart_categories()


def test_registered_sem_seg_datasets_read_the_root_at_load_time(quickstart_root, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(quickstart_root))
    manifest = json.loads((quickstart_root / DATASET_DIRNAME / "quickstart_manifest.json").read_text())
    for name, split in QUICKSTART_SEM_SEG_SPLITS.items():
        dicts = DatasetCatalog.get(name)
        assert len(dicts) == manifest["splits"][split]["num_images"]
        for d in dicts:
            assert os.path.dirname(d["file_name"]) == str(quickstart_root / DATASET_DIRNAME / "images" / split)
            assert os.path.dirname(d["sem_seg_file_name"]) == str(
                quickstart_root / DATASET_DIRNAME / "annotations_detectron2" / split)
            assert os.path.isfile(d["file_name"]) and os.path.isfile(d["sem_seg_file_name"])
        meta = MetadataCatalog.get(name)
        assert meta.stuff_classes == [c["name"] for c in CATEGORIES]
        assert meta.stuff_colors == [c["color"] for c in CATEGORIES]
        assert meta.ignore_label == 255 and meta.evaluator_type == "sem_seg"
    monkeypatch.setenv("DETECTRON2_DATASETS", str(quickstart_root / "elsewhere"))
    with pytest.raises(FileNotFoundError, match=GENERATE_COMMAND):
        DatasetCatalog.get("quickstart_sem_seg_val")


def test_registered_panoptic_and_instance_datasets_load(quickstart_root, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(quickstart_root))
    dicts = DatasetCatalog.get("quickstart_panoptic_val")
    assert len(dicts) == 3 and os.path.exists(dicts[0]["pan_seg_file_name"])
    assert os.path.exists(dicts[0]["sem_seg_file_name"]) and os.path.exists(dicts[0]["file_name"])
    meta = MetadataCatalog.get("quickstart_panoptic_val")
    for seg in dicts[0]["segments_info"]:
        assert seg["isthing"] == (seg["category_id"] in meta.thing_dataset_id_to_contiguous_id.values())
    instances = DatasetCatalog.get("quickstart_instance_val")
    assert sum(len(d["annotations"]) for d in instances) == sum(
        s["isthing"] for d in dicts for s in d["segments_info"])
    assert {a["category_id"] for d in instances for a in d["annotations"]} <= set(range(5))


def test_registering_under_a_root_binds_the_paths_evaluators_read(tmp_path):
    """Evaluators read metadata paths; a root chosen after import must reach them."""
    try:
        register_quickstart_datasets(str(tmp_path))
        assert MetadataCatalog.get("quickstart_ytvis_val").json_file == str(
            tmp_path / VIDEO_DATASET_DIRNAME / "valid.json")
        assert MetadataCatalog.get("quickstart_instance_val").json_file.startswith(str(tmp_path / DATASET_DIRNAME))
        assert MetadataCatalog.get("quickstart_panoptic_val").panoptic_json.startswith(
            str(tmp_path / DATASET_DIRNAME))
        with pytest.raises(FileNotFoundError, match=str(tmp_path)):
            DatasetCatalog.get("quickstart_sem_seg_val")
    finally:
        register_quickstart_datasets(None)
    assert not MetadataCatalog.get("quickstart_ytvis_val").json_file.startswith(str(tmp_path))


def test_missing_quickstart_panoptic_names_the_generate_command(tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=GENERATE_COMMAND):
        DatasetCatalog.get("quickstart_panoptic_train")


def test_the_category_table_gives_contiguous_label_values():
    assert [c["id"] for c in CATEGORIES] == list(range(len(CATEGORIES)))
    assert 0 < sum(c["isthing"] for c in CATEGORIES) < len(CATEGORIES)


def test_registering_the_datasets_imports_neither_the_generator_nor_its_libraries():
    probe = ("import sys, segcore.data; from segcore.data import DatasetCatalog; "
             "assert 'quickstart_panoptic_val' in DatasetCatalog; "
             "print(sorted(m for m in ('segcore.quickstart', 'skimage', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
