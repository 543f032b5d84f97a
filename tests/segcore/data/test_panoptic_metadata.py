"""panoptic_metadata: the Detectron2 and Mask2Former conventions of panoptic dataset metadata."""
import pytest

from segcore.data.datasets.categories import panoptic_metadata

TABLE = [
    {"id": 1, "name": "person", "color": [1, 1, 1], "isthing": 1, "trainId": 11},
    {"id": 5, "name": "sky", "color": [2, 2, 2], "isthing": 0, "trainId": 10},
    {"id": 7, "name": "car", "color": [3, 3, 3], "isthing": 1, "trainId": 13},
]


def test_detectron2_convention_lists_every_class_and_maps_stuff_only():
    meta = panoptic_metadata(TABLE, thing_classes_are_things_only=False, stuff_ids_cover_things=False)
    assert meta["thing_classes"] == meta["stuff_classes"] == ["person", "sky", "car"]
    assert meta["thing_colors"] == meta["stuff_colors"] == [[1, 1, 1], [2, 2, 2], [3, 3, 3]]
    assert meta["thing_dataset_id_to_contiguous_id"] == {1: 0, 7: 2}
    assert meta["stuff_dataset_id_to_contiguous_id"] == {5: 1}


def test_mask2former_convention_lists_things_only_and_maps_every_id():
    meta = panoptic_metadata(TABLE, thing_classes_are_things_only=True, stuff_ids_cover_things=True)
    assert meta["thing_classes"] == ["person", "car"] and meta["thing_colors"] == [[1, 1, 1], [3, 3, 3]]
    assert meta["stuff_classes"] == ["person", "sky", "car"]
    assert meta["stuff_dataset_id_to_contiguous_id"] == {1: 0, 5: 1, 7: 2}


def test_contiguous_ids_from_a_field_and_missing_fields():
    meta = panoptic_metadata(TABLE, thing_classes_are_things_only=False, stuff_ids_cover_things=False,
                             contiguous_id_key="trainId")
    assert meta["thing_dataset_id_to_contiguous_id"] == {1: 11, 7: 13}
    assert meta["stuff_dataset_id_to_contiguous_id"] == {5: 10}
    with pytest.raises(KeyError, match="color"):
        panoptic_metadata([{"id": 1, "name": "x", "isthing": 1}], thing_classes_are_things_only=True,
                          stuff_ids_cover_things=True)
