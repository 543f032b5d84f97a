"""Panoptic / instance mappers, polygon and RLE masks, and polygon transforms.

Data is written in the COCO formats in a tmp_path: a panoptic PNG (ids as RGB) with its
segments_info, and instance annotations with a polygon, an RLE and a crowd region.
"""
from __future__ import annotations

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from PIL import Image

import mask_former  # noqa: F401  (registers the mappers)
from mask_former.data.dataset_mappers import (
    DETRPanopticDatasetMapper,
    MaskFormerInstanceDatasetMapper,
    MaskFormerPanopticDatasetMapper,
)
from segcore.data import DATASET_MAPPER_REGISTRY
from segcore.data import detection_utils as utils
from segcore.data import transforms as T
from segcore.data.panoptic_utils import id2rgb, rgb2id
from segcore.structures import BoxMode
from segcore.structures.masks import PolygonMasks, polygons_to_bitmask, rle_to_bitmask

H, W = 32, 48


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return (a & b).sum() / max((a | b).sum(), 1)


def write_image(path, h=H, w=W):
    rng = np.random.RandomState(0)
    Image.fromarray(rng.randint(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    return str(path)


# --------------------------------------------------------------------------- masks


def test_polygons_to_bitmask_matches_hand_drawn_square():
    mask = polygons_to_bitmask([[2, 2, 6, 2, 6, 6, 2, 6]], 10, 10)
    expected = np.zeros((10, 10), bool)
    expected[2:6, 2:6] = True
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, expected)
    # two polygons of one instance are merged (union)
    two = polygons_to_bitmask([[0, 0, 2, 0, 2, 2, 0, 2], np.array([5, 5, 7, 5, 7, 7, 5, 7.0])], 10, 10)
    assert two.sum() == 8 and two[0, 0] and two[6, 6]
    assert not polygons_to_bitmask([], 4, 5).any() and polygons_to_bitmask([], 4, 5).shape == (4, 5)
    with pytest.raises(ValueError, match="at least 3"):
        polygons_to_bitmask([[0, 0, 1, 1]], 4, 4)


def test_rle_to_bitmask_compressed_uncompressed_and_str():
    mask = np.zeros((7, 9), np.uint8)
    mask[1:4, 2:8] = 1
    rle = mask_util.encode(np.asfortranarray(mask))
    np.testing.assert_array_equal(rle_to_bitmask(rle), mask.astype(bool))
    as_str = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
    np.testing.assert_array_equal(rle_to_bitmask(as_str), mask.astype(bool))
    # COCO's uncompressed RLE (crowd regions): column-major run lengths starting with zeros
    flat = mask.flatten(order="F")
    counts, cur, run = [], 0, 0
    for v in flat:
        if v == cur:
            run += 1
        else:
            counts.append(run)
            cur, run = v, 1
    counts.append(run)
    np.testing.assert_array_equal(rle_to_bitmask({"size": [7, 9], "counts": counts}), mask.astype(bool))
    with pytest.raises(ValueError, match="size"):
        rle_to_bitmask({"counts": counts})


def test_polygon_masks_area_boxes_indexing():
    pm = PolygonMasks([[[0, 0, 4, 0, 4, 2, 0, 2]], [[1, 1, 3, 1, 2, 5]], []])
    assert len(pm) == 3
    torch.testing.assert_close(pm.area(), torch.tensor([8.0, 4.0, 0.0]))
    boxes = pm.get_bounding_boxes().tensor
    torch.testing.assert_close(boxes[:2], torch.tensor([[0.0, 0, 4, 2], [1, 1, 3, 5]]))
    assert pm.nonempty().tolist() == [True, True, False]
    sub = pm[torch.tensor([False, True, True])]
    assert len(sub) == 2 and np.allclose(sub.polygons[0][0], [1, 1, 3, 1, 2, 5])
    assert len(pm[0]) == 1 and len(pm[1:]) == 2 and len(pm[[2, 0]]) == 2
    with pytest.raises(ValueError, match="polygon 0 of instance 1"):
        PolygonMasks([[[0, 0, 1, 1, 2, 2]], [[0, 0, 1]]])
    assert len(PolygonMasks.cat([pm, pm[0]])) == 4


# --------------------------------------------------------------------------- polygon transforms

# a concave "L" shape, 64 x 64 image
L_SHAPE = np.array([8, 8, 40, 8, 40, 20, 20, 20, 20, 50, 8, 50], dtype=np.float64)


@pytest.mark.parametrize(
    "tfm",
    [
        T.HFlipTransform(64),
        T.ResizeTransform(64, 64, 48, 100),
        T.CropTransform(14, 4, 30, 40),
        T.TransformList([T.HFlipTransform(64), T.ResizeTransform(64, 64, 80, 80), T.CropTransform(10, 10, 50, 60)]),
    ],
    ids=["hflip", "resize", "crop", "flip-resize-crop"],
)
def test_polygon_transform_agrees_with_mask_transform(tfm):
    mask = polygons_to_bitmask([L_SHAPE], 64, 64).astype(np.uint8)
    warped_mask = tfm.apply_segmentation(mask)
    h, w = warped_mask.shape
    polys = tfm.apply_polygons([L_SHAPE.reshape(-1, 2).copy()])
    warped_poly = polygons_to_bitmask([p.reshape(-1) for p in polys], h, w)
    assert warped_mask.sum() > 50
    assert iou(warped_poly, warped_mask) > 0.95


def test_crop_clips_and_drops_polygons():
    crop = T.CropTransform(10, 10, 20, 20)
    inside = np.array([[12, 12], [18, 12], [18, 18]], dtype=np.float64)
    outside = np.array([[40, 40], [50, 40], [50, 50]], dtype=np.float64)
    straddling = np.array([[0, 0], [20, 0], [20, 20], [0, 20]], dtype=np.float64)
    out = crop.apply_polygons([inside, outside, straddling])
    assert len(out) == 2  # the polygon outside is dropped
    np.testing.assert_allclose(out[0], inside - 10)
    clipped = out[1]
    assert clipped.min() >= 0 and clipped.max() <= 20
    np.testing.assert_allclose(PolygonMasks([[clipped.reshape(-1)]]).area(), [100.0])


def test_random_apply():
    aug = T.ResizeShortestEdge(10, 1000)
    image = np.zeros((5, 8, 3), np.uint8)
    assert T.AugInput(image).apply_augmentations([T.RandomApply(aug, prob=0.0)]).transforms[0].__class__ is T.NoOpTransform
    inp = T.AugInput(image)
    inp.apply_augmentations([T.RandomApply(aug, prob=1.0)])
    assert inp.image.shape[:2] == (10, 16)
    # the draw comes from numpy.random: applied exactly when uniform() < prob
    np.random.seed(3)
    draws = np.random.uniform(size=20)
    np.random.seed(3)
    applied = [not isinstance(T.RandomApply(T.HFlipTransform(8), 0.5).get_transform(image), T.NoOpTransform) for _ in range(20)]
    assert applied == list(draws < 0.5)
    with pytest.raises(ValueError, match="prob"):
        T.RandomApply(aug, prob=1.5)


# --------------------------------------------------------------------------- annotations


def test_transform_instance_annotations_polygon_and_rle():
    tfms = T.TransformList([T.HFlipTransform(20), T.ResizeTransform(10, 20, 20, 40)])
    poly_anno = {"bbox": [2, 1, 4, 3], "bbox_mode": BoxMode.XYWH_ABS, "segmentation": [[2, 1, 6, 1, 6, 4, 2, 4]], "category_id": 1}
    out = utils.transform_instance_annotations(poly_anno, tfms, (20, 40))
    assert out["bbox_mode"] == BoxMode.XYXY_ABS
    np.testing.assert_allclose(out["bbox"], [28, 2, 36, 8])
    np.testing.assert_allclose(out["segmentation"][0], [36, 2, 28, 2, 28, 8, 36, 8])
    mask = np.zeros((10, 20), np.uint8)
    mask[1:4, 2:6] = 1
    rle_anno = {"bbox": [0, 0, 30, 3], "bbox_mode": BoxMode.XYWH_ABS, "segmentation": mask_util.encode(np.asfortranarray(mask))}
    out = utils.transform_instance_annotations(rle_anno, tfms, (20, 40))
    assert out["segmentation"].shape == (20, 40)
    expected = np.zeros((20, 40), np.uint8)
    expected[2:8, 28:36] = 1
    np.testing.assert_array_equal(out["segmentation"], expected)
    np.testing.assert_allclose(out["bbox"], [0, 0, 40, 6])  # clipped to the image


def test_annotations_to_instances_and_filter_empty():
    annos = [
        {"bbox": [2, 2, 6, 6], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 3, "segmentation": [[2, 2, 6, 2, 6, 6, 2, 6]]},
        {"bbox": [5, 5, 5, 9], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 7, "segmentation": [[5, 5, 5, 9, 5, 7]]},
    ]
    inst = utils.annotations_to_instances(annos, (10, 10))
    assert isinstance(inst.gt_masks, PolygonMasks)
    assert inst.gt_classes.tolist() == [3, 7]
    bit = utils.annotations_to_instances(annos, (10, 10), mask_format="bitmask")
    assert bit.gt_masks.tensor.dtype == torch.bool and bit.gt_masks.tensor.shape == (2, 10, 10)
    assert bit.gt_masks.tensor[0].sum() == 16 and bit.gt_masks.tensor[1].sum() == 0
    kept = utils.filter_empty_instances(bit)
    assert kept.gt_classes.tolist() == [3]  # zero-width box and empty mask
    kept_mask_only, m = utils.filter_empty_instances(bit, by_box=False, return_mask=True)
    assert m.tolist() == [True, False]
    rle = dict(annos[0], segmentation=mask_util.encode(np.asfortranarray(np.ones((10, 10), np.uint8))))
    with pytest.raises(ValueError, match="polygon"):
        utils.annotations_to_instances([rle], (10, 10), mask_format="polygon")
    assert utils.annotations_to_instances([rle], (10, 10), mask_format="bitmask").gt_masks.tensor.all()
    empty = utils.annotations_to_instances([], (10, 10))
    assert len(empty) == 0 and empty.gt_boxes.tensor.shape == (0, 4)
    with pytest.raises(ValueError, match="mask_format"):
        utils.annotations_to_instances(annos, (10, 10), mask_format="rle")


def test_panoptic_ids_roundtrip():
    ids = np.array([[0, 1, 256], [65536, 300, 16777215]], dtype=np.int64)
    rgb = id2rgb(ids)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 3, 3)
    np.testing.assert_array_equal(rgb2id(rgb), ids)
    assert rgb2id(np.array([44, 1, 0])) == 300 and id2rgb(300) == [44, 1, 0]


# --------------------------------------------------------------------------- panoptic mapper


def make_panoptic(tmp_path, with_sem_seg=True, crowd_only=False):
    """A 32x48 image; segment 1 (class 4): rows 0-15; segment 300 (class 9): a 8x8 square;
    segment 2 (crowd, class 5): rows 24-31, cols 0-15; the rest VOID."""
    ids = np.zeros((H, W), np.int64)
    ids[:16] = 1
    ids[18:26, 30:38] = 300
    ids[24:, :16] = 2
    Image.fromarray(id2rgb(ids)).save(tmp_path / "pan.png")
    segments = [
        {"id": 1, "category_id": 4, "iscrowd": 0},
        {"id": 300, "category_id": 9, "iscrowd": 0},
        {"id": 2, "category_id": 5, "iscrowd": 1},
    ]
    if crowd_only:
        segments = [s for s in segments if s["iscrowd"]]
    d = {
        "file_name": write_image(tmp_path / "img.png"),
        "pan_seg_file_name": str(tmp_path / "pan.png"),
        "segments_info": segments,
        "height": H,
        "width": W,
    }
    if with_sem_seg:
        sem = np.full((H, W), 255, np.uint8)
        sem[:16] = 4
        Image.fromarray(sem).save(tmp_path / "sem.png")
        d["sem_seg_file_name"] = str(tmp_path / "sem.png")
    return d, ids


def test_panoptic_mapper_flip_and_pad(tmp_path):
    d, ids = make_panoptic(tmp_path)
    mapper = MaskFormerPanopticDatasetMapper(
        augmentations=[T.HFlipTransform(W)], image_format="RGB", ignore_label=255, size_divisibility=64
    )
    out = mapper(d)
    assert "pan_seg_file_name" in d  # the input dict is not modified
    image, inst = out["image"], out["instances"]
    assert image.shape == (3, 64, 64) and image.dtype == torch.uint8
    assert (image[:, H:, :] == 128).all() and (image[:, :, W:] == 128).all()
    original = np.asarray(Image.open(d["file_name"]))
    np.testing.assert_array_equal(image[:, :H, :W].permute(1, 2, 0).numpy(), original[:, ::-1])
    assert inst.image_size == (64, 64)
    assert inst.gt_classes.tolist() == [4, 9]  # crowd segment skipped
    assert inst.gt_masks.dtype == torch.bool and inst.gt_masks.shape == (2, 64, 64)
    flipped = ids[:, ::-1]
    for k, seg_id in enumerate([1, 300]):
        np.testing.assert_array_equal(inst.gt_masks[k, :H, :W].numpy(), flipped == seg_id)
        assert not inst.gt_masks[k, H:].any() and not inst.gt_masks[k, :, W:].any()
    sem = out["sem_seg"]
    assert sem.dtype == torch.int64 and sem.shape == (64, 64)
    assert (sem[H:] == 255).all() and (sem[:16, :W] == 4).all() and (sem[16:H, :W] == 255).all()


def test_panoptic_mapper_resize_without_sem_seg_and_crowd_only(tmp_path):
    d, ids = make_panoptic(tmp_path, with_sem_seg=False)
    mapper = MaskFormerPanopticDatasetMapper(
        augmentations=[T.ResizeTransform(H, W, 2 * H, 2 * W)], image_format="BGR", ignore_label=255, size_divisibility=-1
    )
    out = mapper(d)
    assert "sem_seg" not in out and out["image"].shape == (3, 2 * H, 2 * W)
    up = np.kron(ids, np.ones((2, 2), np.int64))  # nearest-neighbour x2
    np.testing.assert_array_equal(out["instances"].gt_masks[1].numpy(), up == 300)

    d, _ = make_panoptic(tmp_path, crowd_only=True)
    out = mapper(d)
    assert len(out["instances"]) == 0
    assert out["instances"].gt_masks.shape == (0, 2 * H, 2 * W) and out["instances"].gt_masks.dtype == torch.bool


def test_panoptic_mapper_errors(tmp_path):
    d, _ = make_panoptic(tmp_path)
    mapper = MaskFormerPanopticDatasetMapper(augmentations=[], image_format="RGB", ignore_label=255, size_divisibility=16)
    with pytest.raises(ValueError, match="SIZE_DIVISIBILITY"):
        mapper(d)
    mapper.size_divisibility = -1
    with pytest.raises(ValueError, match="pan_seg_file_name"):
        mapper({k: v for k, v in d.items() if k != "pan_seg_file_name"})
    Image.fromarray(np.zeros((H, W + 1, 3), np.uint8)).save(tmp_path / "bad.png")
    with pytest.raises(utils.SizeMismatchError, match="bad.png"):
        mapper(dict(d, pan_seg_file_name=str(tmp_path / "bad.png")))
    eval_mapper = MaskFormerPanopticDatasetMapper(False, augmentations=[], image_format="RGB", ignore_label=255, size_divisibility=-1)
    with pytest.raises(RuntimeError, match="training"):
        eval_mapper(d)


def test_panoptic_mapper_from_config_reuses_semantic_augmentations():
    from segcore.config import get_cfg
    from segcore.data import MetadataCatalog
    from mask_former.config import add_mask_former_config

    name = "_test_mappers_panoptic_meta"
    if name not in MetadataCatalog.list():
        MetadataCatalog.get(name).set(ignore_label=254)
    cfg = get_cfg()
    add_mask_former_config(cfg)
    cfg.DATASETS.TRAIN = (name,)
    cfg.INPUT.CROP.ENABLED = True
    cfg.INPUT.CROP.TYPE = "absolute"
    cfg.INPUT.CROP.SIZE = (64, 64)
    cfg.INPUT.SIZE_DIVISIBILITY = 64
    cfg.INPUT.DATASET_MAPPER_NAME = "mask_former_panoptic"
    mapper = DATASET_MAPPER_REGISTRY.get(cfg.INPUT.DATASET_MAPPER_NAME)(cfg, True)
    assert isinstance(mapper, MaskFormerPanopticDatasetMapper)
    assert [type(a).__name__ for a in mapper.tfm_gens] == ["ResizeShortestEdge", "RandomCrop_CategoryAreaConstraint", "RandomFlip"]
    assert mapper.ignore_label == 254 and mapper.size_divisibility == 64


# --------------------------------------------------------------------------- instance mapper


def make_instances(tmp_path, h=40, w=40):
    square = [[4.0, 4.0, 20.0, 4.0, 20.0, 20.0, 4.0, 20.0]]
    disc = np.zeros((h, w), np.uint8)
    yy, xx = np.mgrid[:h, :w]
    disc[(yy - 28) ** 2 + (xx - 28) ** 2 <= 36] = 1
    crowd = np.zeros((h, w), np.uint8)
    crowd[30:, :10] = 1
    annos = [
        {"bbox": [4, 4, 16, 16], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 2, "segmentation": square, "iscrowd": 0},
        {"bbox": [22, 22, 13, 13], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 6,
         "segmentation": mask_util.encode(np.asfortranarray(disc)), "iscrowd": 0, "keypoints": [1, 2, 2]},
        {"bbox": [0, 30, 10, 10], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 1,
         "segmentation": mask_util.encode(np.asfortranarray(crowd)), "iscrowd": 1},
    ]
    d = {"file_name": write_image(tmp_path / "inst.png", h, w), "height": h, "width": w, "annotations": annos}
    square_mask = polygons_to_bitmask(square, h, w)
    return d, square_mask, disc.astype(bool)


def test_instance_mapper_resize_flip_pad(tmp_path):
    d, square, disc = make_instances(tmp_path)
    mapper = MaskFormerInstanceDatasetMapper(
        augmentations=[T.ResizeTransform(40, 40, 80, 80), T.HFlipTransform(80)], image_format="RGB", size_divisibility=96
    )
    out = mapper(d)
    assert "annotations" not in out and "annotations" in d
    inst = out["instances"]
    assert out["image"].shape == (3, 96, 96) and (out["image"][:, 80:] == 128).all()
    assert inst.image_size == (96, 96)
    assert inst.gt_classes.tolist() == [2, 6]  # crowd skipped
    masks = inst.gt_masks
    assert masks.dtype == torch.bool and masks.shape == (2, 96, 96)
    assert not masks[:, 80:].any() and not masks[:, :, 80:].any()
    up = lambda m: np.kron(m, np.ones((2, 2), bool))[:, ::-1]  # noqa: E731
    assert iou(masks[0, :80, :80].numpy(), up(square)) > 0.95
    np.testing.assert_array_equal(masks[1, :80, :80].numpy(), up(disc))  # RLE: warped as a mask, exact


def test_instance_mapper_crop_keeps_emptied_instance_and_handles_no_annotations(tmp_path):
    d, square, disc = make_instances(tmp_path)
    # a crop of the bottom-right: the polygon square is cut away entirely
    mapper = MaskFormerInstanceDatasetMapper(augmentations=[T.CropTransform(22, 22, 16, 16)], image_format="RGB", size_divisibility=-1)
    out = mapper(d)
    inst = out["instances"]
    assert out["image"].shape == (3, 16, 16)
    assert inst.gt_classes.tolist() == [2, 6]
    assert not inst.gt_masks[0].any()  # kept, empty (as the original mapper)
    np.testing.assert_array_equal(inst.gt_masks[1].numpy(), disc[22:38, 22:38])

    empty = mapper(dict(d, annotations=[a for a in d["annotations"] if a["iscrowd"]]))
    assert len(empty["instances"]) == 0 and empty["instances"].gt_masks.shape == (0, 16, 16)
    with pytest.raises(KeyError, match="annotations"):
        mapper({k: v for k, v in d.items() if k != "annotations"})


def test_instance_mapper_from_config():
    from segcore.config import get_cfg
    from mask_former.config import add_mask_former_config

    cfg = get_cfg()
    add_mask_former_config(cfg)
    cfg.INPUT.CROP.ENABLED = True
    cfg.INPUT.CROP.TYPE = "absolute"
    cfg.INPUT.CROP.SIZE = (64, 64)
    cfg.INPUT.COLOR_AUG_SSD = True
    cfg.INPUT.SIZE_DIVISIBILITY = 64
    mapper = DATASET_MAPPER_REGISTRY.get("mask_former_instance")(cfg, True)
    assert [type(a).__name__ for a in mapper.tfm_gens] == ["ResizeShortestEdge", "RandomCrop", "ColorAugSSDTransform", "RandomFlip"]
    assert mapper.size_divisibility == 64


# --------------------------------------------------------------------------- DETR panoptic mapper


def test_detr_mapper_config_matches_original():
    from segcore.engine import setup_cfg

    cfg = setup_cfg("configs/coco-panoptic/maskformer_panoptic_R50_bs64_554k.yaml")
    assert cfg.INPUT.DATASET_MAPPER_NAME == "detr_panoptic"
    mapper = DATASET_MAPPER_REGISTRY.get(cfg.INPUT.DATASET_MAPPER_NAME)(cfg, True)
    assert isinstance(mapper, DETRPanopticDatasetMapper)
    flip, resize = mapper.tfm_gens
    assert isinstance(flip, T.RandomFlip) and flip.prob == 0.5 and flip.horizontal
    assert isinstance(resize, T.ResizeShortestEdge) and not resize.is_range
    assert resize.short_edge_length == tuple(range(480, 801, 32)) and resize.max_size == 1333
    crop_resize, crop = mapper.crop_gen
    assert crop_resize.short_edge_length == (400, 500, 600) and not crop_resize.is_range
    assert isinstance(crop, T.RandomCrop) and crop.crop_type == "absolute_range" and tuple(crop.crop_size) == (384, 600)
    assert mapper.augmentations_for(True) == [flip, crop_resize, crop, resize]
    assert mapper.augmentations_for(False) == [flip, resize]

    test_mapper = DETRPanopticDatasetMapper(cfg, False)
    assert test_mapper.crop_gen is None and len(test_mapper.tfm_gens) == 1
    assert set(test_mapper.tfm_gens[0].short_edge_length) == {800} and test_mapper.tfm_gens[0].max_size == 1333


def test_detr_mapper_outputs_and_crop_path(tmp_path):
    d, ids = make_panoptic(tmp_path, with_sem_seg=False)
    mapper = DETRPanopticDatasetMapper(
        crop_gen=None, tfm_gens=[T.RandomFlip(prob=1.0), T.ResizeShortestEdge(64, 1000)], image_format="RGB"
    )
    out = mapper(d)
    inst = out["instances"]
    assert out["image"].shape == (3, 64, 96)  # resized, not padded
    assert inst.gt_classes.tolist() == [4, 9]
    up = np.kron(ids, np.ones((2, 2), np.int64))[:, ::-1]
    np.testing.assert_array_equal(inst.gt_masks[0].numpy(), up == 1)
    np.testing.assert_array_equal(inst.gt_masks[1].numpy(), up == 300)

    # the crop path is taken exactly when numpy.random.rand() <= 0.5, drawn first
    crop_mapper = DETRPanopticDatasetMapper(
        crop_gen=[T.ResizeShortestEdge([16], sample_style="choice"), T.RandomCrop("absolute", (8, 8))],
        tfm_gens=[T.RandomFlip(prob=0.0), T.ResizeShortestEdge(20, 1000)],
        image_format="RGB",
    )
    seen = set()
    for seed in range(8):
        np.random.seed(seed)
        use_crop = not np.random.rand() > 0.5
        np.random.seed(seed)
        out = crop_mapper(d)
        expected = (20, 20) if use_crop else (20, 30)
        assert tuple(out["image"].shape[1:]) == expected
        assert out["instances"].gt_masks.shape[1:] == expected
        seen.add(use_crop)
    assert seen == {True, False}

    eval_mapper = DETRPanopticDatasetMapper(False, crop_gen=None, tfm_gens=[T.ResizeShortestEdge(16, 1000)], image_format="RGB")
    out = eval_mapper(dict(d, annotations=[]))
    assert "instances" not in out and "annotations" not in out and out["image"].shape == (3, 16, 24)
