"""The large-scale-jitter mappers ``coco_instance_lsj`` and ``coco_panoptic_lsj``.

Hand-made inputs paint every instance / segment in its own colour, so after the random flip,
scale and crop each output mask can be checked against the output image's pixels. The
quickstart's generated COCO instance and panoptic files check the real on-disk formats.
"""
from __future__ import annotations

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from PIL import Image

from mask2former.config import add_maskformer2_config
from mask2former.data.dataset_mappers.coco_instance_lsj_dataset_mapper import (
    COCOInstanceLSJDatasetMapper,
)
from mask2former.data.dataset_mappers.coco_panoptic_lsj_dataset_mapper import (
    COCOPanopticLSJDatasetMapper,
)
from mask2former.data.dataset_mappers.lsj import (
    build_lsj_augmentation,
    lsj_padding_mask,
)
from segcore.config import get_cfg
from segcore.data import build_dataset_mapper
from segcore.data import detection_utils as utils
from segcore.data import transforms as T
from segcore.data.panoptic_utils import id2rgb, rgb2id
from segcore.data.datasets.quickstart import (
    load_quickstart_instances,
    load_quickstart_panoptic,
)
from segcore.structures import BoxMode
from segcore.structures.masks import polygons_to_bitmask, rle_to_bitmask

H, W = 40, 60  # the hand-made images (pixels)
S = 96  # INPUT.IMAGE_SIZE in these tests
PAD = 128  # the image padding value
BACKGROUND = (0, 0, 0)
RED, GREEN, BLUE, YELLOW = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)


def lsj_cfg(min_scale=0.5, max_scale=2.0, flip="horizontal", image_size=S):
    cfg = get_cfg()
    add_maskformer2_config(cfg)
    cfg.INPUT.IMAGE_SIZE = image_size
    cfg.INPUT.MIN_SCALE = min_scale
    cfg.INPUT.MAX_SCALE = max_scale
    cfg.INPUT.RANDOM_FLIP = flip
    cfg.INPUT.FORMAT = "RGB"
    return cfg


def colour_fraction(image: torch.Tensor, mask: torch.Tensor, colour, tol=40) -> float:
    """The fraction of the mask's pixels whose colour is within ``tol`` of ``colour`` in every channel."""
    pixels = image.permute(1, 2, 0)[mask].to(torch.int64)
    if len(pixels) == 0:
        return 1.0
    return ((pixels - torch.tensor(colour)).abs().max(dim=1).values <= tol).float().mean().item()


def interior(mask: torch.Tensor) -> torch.Tensor:
    """The mask eroded by one pixel (4-neighbourhood)."""
    m = mask.clone()
    m[1:] &= mask[:-1]
    m[:-1] &= mask[1:]
    m[:, 1:] &= mask[:, :-1]
    m[:, :-1] &= mask[:, 1:]
    return m


def assert_mask_has_colour(image: torch.Tensor, mask: torch.Tensor, colour, what):
    """The mask lies on the pixels of its colour: its interior has that colour (bilinear resizing
    blends the colours along the edges), and the pixels of exactly that colour lie in the mask."""
    assert colour_fraction(image, interior(mask), colour) > 0.95, what
    pure = (image.permute(1, 2, 0).to(torch.int64) - torch.tensor(colour)).abs().max(dim=2).values <= 10
    if pure.any():
        assert (pure & mask).sum() / pure.sum() > 0.95, what


def tight_box(mask: torch.Tensor):
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]


def content_size(padding_mask: torch.Tensor):
    """(h, w) of the top-left image content, checking that the padding is exactly the rest."""
    valid = ~padding_mask
    h = int(valid.any(dim=1).sum())
    w = int(valid.any(dim=0).sum())
    expected = torch.zeros_like(valid)
    expected[:h, :w] = True
    assert torch.equal(valid, expected), "the padding must be the bottom rows and right columns"
    return h, w


def check_common(out, size=S):
    image, padding_mask, inst = out["image"], out["padding_mask"], out["instances"]
    assert image.shape == (3, size, size) and image.dtype == torch.uint8
    assert padding_mask.shape == (size, size) and padding_mask.dtype == torch.bool
    assert inst.image_size == (size, size)
    assert inst.gt_masks.shape == (len(inst), size, size) and inst.gt_masks.dtype == torch.bool
    assert inst.gt_classes.dtype == torch.int64
    assert inst.gt_boxes.tensor.shape == (len(inst), 4)
    assert (image.permute(1, 2, 0)[padding_mask] == PAD).all()
    assert not (inst.gt_masks & padding_mask).any(), "padding belongs to no mask"
    content_size(padding_mask)


# --------------------------------------------------------------------------- hand-made instance data

SQUARE = [[4.0, 4.0, 24.0, 4.0, 24.0, 20.0, 4.0, 20.0]]  # polygon, x 4..24, y 4..20


def disc_mask():
    yy, xx = np.mgrid[:H, :W]
    return ((yy - 24) ** 2 + (xx - 44) ** 2 <= 81).astype(np.uint8)


def crowd_mask():
    m = np.zeros((H, W), np.uint8)
    m[30:, :12] = 1
    return m


def make_instance_dict(tmp_path, extra_annos=()):
    """A 40x60 image: a red polygon square (class 1), a green RLE disc (class 2), a blue crowd
    region (class 3) on black."""
    image = np.zeros((H, W, 3), np.uint8)
    image[:] = BACKGROUND
    image[polygons_mask(SQUARE)] = RED
    image[disc_mask().astype(bool)] = GREEN
    image[crowd_mask().astype(bool)] = BLUE
    Image.fromarray(image).save(tmp_path / "inst.png")
    annos = [
        {"bbox": [4, 4, 20, 16], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 1, "segmentation": SQUARE, "iscrowd": 0},
        {"bbox": [35, 15, 19, 19], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 2,
         "segmentation": mask_util.encode(np.asfortranarray(disc_mask())), "keypoints": [1, 1, 2]},
        {"bbox": [0, 30, 12, 10], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 3,
         "segmentation": mask_util.encode(np.asfortranarray(crowd_mask())), "iscrowd": 1},
        *extra_annos,
    ]
    return {"file_name": str(tmp_path / "inst.png"), "height": H, "width": W, "image_id": 7, "annotations": annos}


def polygons_mask(polygons):
    return polygons_to_bitmask(polygons, H, W)


def test_instance_masks_follow_the_image_through_random_flip_scale_and_crop(tmp_path):
    d = make_instance_dict(tmp_path)
    mapper = COCOInstanceLSJDatasetMapper(lsj_cfg(), True)
    colours = {1: RED, 2: GREEN}
    seen = {"padded": False, "cropped": False, "red_left": False, "red_right": False}
    for seed in range(16):
        np.random.seed(seed)
        out = mapper(d)
        check_common(out)
        inst = out["instances"]
        assert set(inst.gt_classes.tolist()) <= {1, 2}, "the crowd region is skipped"
        assert inst.gt_classes.tolist() == sorted(inst.gt_classes.tolist()), "annotation order kept"
        for k, cls in enumerate(inst.gt_classes.tolist()):
            mask = inst.gt_masks[k]
            assert mask.any(), "instances left empty are dropped"
            assert_mask_has_colour(out["image"], mask, colours[cls], (seed, cls))
            assert inst.gt_boxes.tensor[k].tolist() == tight_box(mask)
        # no blue (crowd) pixel is claimed by any mask
        union = inst.gt_masks.any(dim=0)
        assert colour_fraction(out["image"], union, BLUE) < 0.05 or not union.any()
        seen["padded"] |= bool(out["padding_mask"].any())
        seen["cropped"] |= not out["padding_mask"].any()
        if inst.gt_classes.tolist() == [1, 2]:
            red_x = torch.nonzero(inst.gt_masks[0])[:, 1].float().mean()
            green_x = torch.nonzero(inst.gt_masks[1])[:, 1].float().mean()
            seen["red_left" if red_x < green_x else "red_right"] = True
    assert all(seen.values()), seen  # small and large scales, flipped and not, were all exercised
    assert "annotations" in d and "image" not in d  # the input dict is not modified


def test_instance_exact_geometry_at_a_fixed_scale_and_padding(tmp_path):
    d = make_instance_dict(tmp_path)
    # scale 0.5 of 96: the 40x60 image fits a 48x48 box as 32x48 pixels, then is padded to 96x96
    mapper = COCOInstanceLSJDatasetMapper(lsj_cfg(min_scale=0.5, max_scale=0.5, flip="none"), True)
    out = mapper(d)
    check_common(out)
    assert content_size(out["padding_mask"]) == (32, 48)
    assert (out["image"][:, 32:] == PAD).all() and (out["image"][:, :, 48:] == PAD).all()
    inst = out["instances"]
    assert inst.gt_classes.tolist() == [1, 2]
    # the polygon is scaled by 0.8: x 3.2..19.2, y 3.2..16
    square = inst.gt_masks[0]
    assert inst.gt_boxes.tensor[0].tolist() == [3.0, 3.0, 19.0, 16.0]
    assert square[4:15, 4:18].all() and square.sum() <= 16 * 13
    # the RLE disc goes through the same nearest-neighbour resize as a label map
    expected = np.asarray(Image.fromarray(disc_mask()).resize((48, 32), Image.Resampling.NEAREST)).astype(bool)
    np.testing.assert_array_equal(inst.gt_masks[1, :32, :48].numpy(), expected)
    assert not inst.gt_masks[:, 32:].any() and not inst.gt_masks[:, :, 48:].any()


def test_instance_cropped_away_instances_are_dropped_and_empty_images_work(tmp_path):
    d = make_instance_dict(tmp_path)
    # scale 2 of 96 with the crop at the far corner (numpy uniform -> 1): the image becomes 128x192,
    # the 96x96 window starts at (y, x) = (32, 96); the red square (top-left) is cut away
    mapper = COCOInstanceLSJDatasetMapper(lsj_cfg(min_scale=2.0, max_scale=2.0, flip="none"), True)
    found = False
    for seed in range(40):
        np.random.seed(seed)
        np.random.uniform()  # the scale draw
        offset_u = np.random.uniform()
        if offset_u > 0.9:
            np.random.seed(seed)
            out = mapper(d)
            check_common(out)
            assert not out["padding_mask"].any()
            assert out["instances"].gt_classes.tolist() == [2], "the red square is outside the crop"
            found = True
            break
    assert found
    np.random.seed(0)
    crowd_only = dict(d, annotations=[a for a in d["annotations"] if a.get("iscrowd")])
    out = mapper(crowd_only)
    check_common(out)
    assert len(out["instances"]) == 0 and out["instances"].gt_masks.shape == (0, S, S)
    out = mapper(dict(d, annotations=[]))
    assert len(out["instances"]) == 0 and out["instances"].gt_boxes.tensor.shape == (0, 4)


def test_instance_mapper_errors(tmp_path):
    d = make_instance_dict(tmp_path)
    mapper = COCOInstanceLSJDatasetMapper(lsj_cfg(), True)
    with pytest.raises(KeyError, match="inst.png.*annotations"):
        mapper({k: v for k, v in d.items() if k != "annotations"})
    no_segm = {"bbox": [0, 0, 4, 4], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 1}
    with pytest.raises(KeyError, match="segmentation"):
        mapper(make_instance_dict(tmp_path, [no_segm]))
    with pytest.raises(ValueError, match="inst.png.*type 'str'"):
        mapper(make_instance_dict(tmp_path, [dict(no_segm, segmentation="oops")]))
    wrong_rle = mask_util.encode(np.asfortranarray(np.ones((H + 1, W), np.uint8)))
    with pytest.raises(ValueError, match=r"inst.png.*\(41, 60\)"):
        mapper(make_instance_dict(tmp_path, [dict(no_segm, segmentation=wrong_rle)]))
    with pytest.raises(utils.SizeMismatchError, match="inst.png"):
        mapper(dict(d, height=H + 2))
    with pytest.raises(FileNotFoundError, match="missing.png"):
        mapper(dict(d, file_name=str(tmp_path / "missing.png")))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    with pytest.raises(utils.ImageReadError, match="broken.png"):
        mapper(dict(d, file_name=str(tmp_path / "broken.png")))
    eval_mapper = COCOInstanceLSJDatasetMapper(False, augmentations=[], image_format="RGB")
    with pytest.raises(RuntimeError, match="training"):
        eval_mapper(d)


# --------------------------------------------------------------------------- hand-made panoptic data

RED_ID, BLUE_ID, GREEN_ID = 0xFF, 0xFF0000, 0xFF00  # ids whose colours are red, blue and green
WHITE_ID = 0xFFFFFF  # the id of (255, 255, 255), the colour the crop pads label maps with


def make_panoptic_dict(tmp_path):
    """A 40x60 panoptic map, also used as the image (each segment painted in its id colour):
    a red segment (class 4): rows 0-11; a blue one (class 9): a 12x12 square; a green one (crowd,
    class 5): bottom-left; a white one (id 0xFFFFFF, class 7): a block on the right."""
    ids = np.zeros((H, W), np.int64)
    ids[:12] = RED_ID
    ids[18:30, 30:42] = BLUE_ID
    ids[30:, :12] = GREEN_ID
    ids[16:36, 48:58] = WHITE_ID
    rgb = id2rgb(ids)
    Image.fromarray(rgb).save(tmp_path / "pan.png")
    Image.fromarray(rgb).save(tmp_path / "img.png")
    segments = [
        {"id": RED_ID, "category_id": 4, "iscrowd": 0},
        {"id": BLUE_ID, "category_id": 9, "iscrowd": 0},
        {"id": GREEN_ID, "category_id": 5, "iscrowd": 1},
        {"id": WHITE_ID, "category_id": 7},
    ]
    d = {"file_name": str(tmp_path / "img.png"), "pan_seg_file_name": str(tmp_path / "pan.png"),
         "segments_info": segments, "height": H, "width": W}
    return d, ids


def test_panoptic_masks_follow_the_image_and_padding_is_void(tmp_path):
    d, _ = make_panoptic_dict(tmp_path)
    mapper = COCOPanopticLSJDatasetMapper(lsj_cfg(min_scale=0.3, max_scale=2.0), True)
    colours = {4: RED, 9: BLUE, 7: (255, 255, 255)}
    seen_padding = seen_white = False
    for seed in range(12):
        np.random.seed(seed)
        out = mapper(d)
        check_common(out)
        inst = out["instances"]
        assert inst.gt_classes.tolist() == [4, 9, 7], "crowd skipped, one pair per other segment, in order"
        for k, cls in enumerate(inst.gt_classes.tolist()):
            mask = inst.gt_masks[k]
            assert_mask_has_colour(out["image"], mask, colours[cls], (seed, cls))
            expected_box = tight_box(mask) if mask.any() else [0, 0, 0, 0]
            assert inst.gt_boxes.tensor[k].tolist() == expected_box
        seen_padding |= bool(out["padding_mask"].any())
        seen_white |= bool(inst.gt_masks[2].any() and out["padding_mask"].any())
    assert seen_padding and seen_white
    assert "pan_seg_file_name" in d  # the input dict is not modified


def test_panoptic_exact_nearest_neighbour_geometry_with_vertical_flip(tmp_path):
    d, ids = make_panoptic_dict(tmp_path)
    # scale 0.5 of 96: 40x60 -> 32x48, padded; a vertical flip with probability 0.5
    mapper = COCOPanopticLSJDatasetMapper(lsj_cfg(min_scale=0.5, max_scale=0.5, flip="vertical"), True)
    flips = set()
    for seed in range(6):
        np.random.seed(seed)
        flipped = np.random.uniform() < 0.5  # RandomFlip draws first
        np.random.seed(seed)
        out = mapper(d)
        check_common(out)
        assert content_size(out["padding_mask"]) == (32, 48)
        source = ids[::-1] if flipped else ids
        small = rgb2id(np.asarray(Image.fromarray(id2rgb(source)).resize((48, 32), Image.Resampling.NEAREST)))
        inst = out["instances"]
        for k, seg_id in enumerate([RED_ID, BLUE_ID, WHITE_ID]):
            np.testing.assert_array_equal(inst.gt_masks[k, :32, :48].numpy(), small == seg_id)
        flips.add(flipped)
    assert flips == {True, False}


def test_panoptic_segment_cropped_away_keeps_an_empty_mask(tmp_path):
    d, ids = make_panoptic_dict(tmp_path)
    d["segments_info"] = [dict(s, iscrowd=1) for s in d["segments_info"]]
    out = COCOPanopticLSJDatasetMapper(lsj_cfg(), True)(d)
    check_common(out)
    assert len(out["instances"]) == 0 and out["instances"].gt_boxes.tensor.shape == (0, 4)

    d, ids = make_panoptic_dict(tmp_path)
    ids_only_corner = np.zeros_like(ids)
    ids_only_corner[:4, :4] = BLUE_ID  # a segment in the top-left corner only
    Image.fromarray(id2rgb(ids_only_corner)).save(tmp_path / "pan.png")
    mapper = COCOPanopticLSJDatasetMapper(lsj_cfg(min_scale=2.0, max_scale=2.0, flip="none"), True)
    np.random.seed(1)
    np.random.uniform()
    assert np.random.uniform() > 0.2  # the crop of seed 1 starts far from the corner
    np.random.seed(1)
    out = mapper(d)
    inst = out["instances"]
    assert inst.gt_classes.tolist() == [4, 9, 7]  # kept, as in the original
    assert not inst.gt_masks.any() and (inst.gt_boxes.tensor == 0).all()


def test_panoptic_mapper_errors(tmp_path):
    d, _ = make_panoptic_dict(tmp_path)
    mapper = COCOPanopticLSJDatasetMapper(lsj_cfg(), True)
    with pytest.raises(ValueError, match="pan_seg_file_name.*img.png"):
        mapper({k: v for k, v in d.items() if k != "pan_seg_file_name"})
    with pytest.raises(KeyError, match="img.png.*segments_info"):
        mapper({k: v for k, v in d.items() if k != "segments_info"})
    with pytest.raises(KeyError, match="category_id"):
        mapper(dict(d, segments_info=[{"id": BLUE_ID}]))
    Image.fromarray(np.zeros((H, W + 1, 3), np.uint8)).save(tmp_path / "bad.png")
    with pytest.raises(utils.SizeMismatchError, match="bad.png"):
        mapper(dict(d, pan_seg_file_name=str(tmp_path / "bad.png")))
    with pytest.raises(FileNotFoundError, match="nowhere.png"):
        mapper(dict(d, pan_seg_file_name=str(tmp_path / "nowhere.png")))
    eval_mapper = COCOPanopticLSJDatasetMapper(False, augmentations=[], image_format="RGB")
    with pytest.raises(RuntimeError, match="training"):
        eval_mapper(d)


# --------------------------------------------------------------------------- augmentation and config


def test_scale_is_drawn_uniformly_within_min_and_max_scale(tmp_path):
    d = make_instance_dict(tmp_path)
    min_scale, max_scale = 0.2, 0.9  # always smaller than the output: the whole image is visible
    mapper = COCOInstanceLSJDatasetMapper(lsj_cfg(min_scale=min_scale, max_scale=max_scale, flip="none"), True)
    widths = []
    for seed in range(10):
        np.random.seed(seed)
        scale = np.random.uniform(min_scale, max_scale)
        np.random.seed(seed)
        out = mapper(d)
        h, w = content_size(out["padding_mask"])
        # the 40x60 image fits the (96 s) square box: width 96 s, height 64 s (rounded)
        assert (h, w) == (round(H * S * scale / W), round(S * scale))
        widths.append(w)
    assert min(widths) >= round(S * min_scale) and max(widths) <= round(S * max_scale)
    assert len(set(widths)) > 5  # a random draw, not one scale


def test_build_lsj_augmentation_and_padding_mask():
    flip, resize, crop = build_lsj_augmentation(image_size=64, min_scale=0.1, max_scale=2.0)
    assert isinstance(flip, T.RandomFlip) and flip.horizontal and not flip.vertical and flip.prob == 0.5
    assert isinstance(resize, T.ResizeScale)
    assert (resize.min_scale, resize.max_scale, resize.target_height, resize.target_width) == (0.1, 2.0, 64, 64)
    assert isinstance(crop, T.FixedSizeCrop) and crop.crop_size == (64, 64) and crop.pad_value == PAD
    vertical = build_lsj_augmentation(image_size=64, min_scale=1, max_scale=1, random_flip="vertical")[0]
    assert vertical.vertical and not vertical.horizontal
    assert [type(a) for a in build_lsj_augmentation(image_size=64, min_scale=1, max_scale=1, random_flip="none")] == [
        T.ResizeScale, T.FixedSizeCrop]
    with pytest.raises(ValueError, match="INPUT.RANDOM_FLIP"):
        build_lsj_augmentation(image_size=64, min_scale=1, max_scale=1, random_flip="diagonal")
    with pytest.raises(ValueError, match="INPUT.IMAGE_SIZE"):
        build_lsj_augmentation(image_size=0, min_scale=1, max_scale=1)
    with pytest.raises(ValueError, match="min_scale"):
        build_lsj_augmentation(image_size=64, min_scale=2.0, max_scale=1.0)

    # a 10x20 input shifted by a crop then padded to 16x16: the padding is 255 in label maps, not 0
    tfms = T.TransformList([T.CropTransform(4, 0, 16, 10, 20, 10), T.PadTransform(0, 0, 0, 6, 16, 10, 128, 255)])
    pm = lsj_padding_mask(tfms, (10, 20))
    expected = torch.zeros(16, 16, dtype=torch.bool)
    expected[10:] = True
    assert torch.equal(pm, expected)


@pytest.mark.parametrize(
    "name, cls",
    [("coco_instance_lsj", COCOInstanceLSJDatasetMapper), ("coco_panoptic_lsj", COCOPanopticLSJDatasetMapper)],
)
def test_build_from_config_by_registry_name(name, cls):
    cfg = lsj_cfg()
    defaults = get_cfg()
    add_maskformer2_config(defaults)
    assert (defaults.INPUT.IMAGE_SIZE, defaults.INPUT.MIN_SCALE, defaults.INPUT.MAX_SCALE) == (1024, 0.1, 2.0)
    cfg.INPUT.DATASET_MAPPER_NAME = name
    mapper = build_dataset_mapper(cfg, True)
    assert type(mapper) is cls
    assert [type(a) for a in mapper.tfm_gens] == [T.RandomFlip, T.ResizeScale, T.FixedSizeCrop]
    assert mapper.tfm_gens[2].crop_size == (S, S) and mapper.tfm_gens[1].target_height == S
    assert mapper.img_format == "RGB" and mapper.size_divisibility == -1  # FixedSizeCrop pads, not the base
    cfg.INPUT.RANDOM_FLIP = "none"
    assert [type(a) for a in build_dataset_mapper(cfg, True).tfm_gens] == [T.ResizeScale, T.FixedSizeCrop]
    with pytest.raises(ValueError, match="training only"):
        build_dataset_mapper(cfg, False)
    cfg.INPUT.RANDOM_FLIP = "both"
    with pytest.raises(ValueError, match="INPUT.RANDOM_FLIP"):
        build_dataset_mapper(cfg, True)


# --------------------------------------------------------------------------- quickstart data


def test_instance_mapper_on_quickstart_coco_instances(quickstart_root):
    dicts = load_quickstart_instances("quickstart_instance_train", "training", "train", str(quickstart_root))
    assert any(len(d["annotations"]) for d in dicts)
    # scale 1, no flip: each image is resized to fit 96x96 and padded, nothing is cropped
    mapper = COCOInstanceLSJDatasetMapper(lsj_cfg(min_scale=1.0, max_scale=1.0, flip="none"), True)
    for d in dicts:
        d = dict(d, annotations=[dict(a) for a in d["annotations"]])
        if d["annotations"]:
            d["annotations"][0]["iscrowd"] = 1  # marked crowd: must be skipped
        out = mapper(d)
        check_common(out)
        ratio = min(S / d["height"], S / d["width"])
        new_h, new_w = (int(v) for v in np.round(np.multiply((d["height"], d["width"]), ratio)))
        assert content_size(out["padding_mask"]) == (new_h, new_w)
        expected_masks = []
        for a in d["annotations"][1:]:
            if a.get("iscrowd"):
                continue
            m = rle_to_bitmask(a["segmentation"]).astype(np.uint8)
            small = np.asarray(Image.fromarray(m).resize((new_w, new_h), Image.Resampling.NEAREST)).astype(bool)
            if small.any():
                expected_masks.append((a["category_id"], small))
        inst = out["instances"]
        assert inst.gt_classes.tolist() == [c for c, _ in expected_masks]
        for k, (_, m) in enumerate(expected_masks):
            np.testing.assert_array_equal(inst.gt_masks[k, :new_h, :new_w].numpy(), m)
            assert inst.gt_boxes.tensor[k].tolist() == tight_box(inst.gt_masks[k])


def test_panoptic_mapper_on_quickstart_coco_panoptic(quickstart_root):
    dicts = load_quickstart_panoptic("training", "train", str(quickstart_root))
    mapper = COCOPanopticLSJDatasetMapper(lsj_cfg(min_scale=1.0, max_scale=1.0, flip="none"), True)
    cfg = lsj_cfg()
    cfg.INPUT.DATASET_MAPPER_NAME = "coco_panoptic_lsj"
    random_mapper = build_dataset_mapper(cfg, True)
    np.random.seed(0)
    for d in dicts:
        d = dict(d, segments_info=[dict(s) for s in d["segments_info"]])
        d["segments_info"][0]["iscrowd"] = 1
        out = mapper(d)
        check_common(out)
        width, height = Image.open(d["file_name"]).size
        ratio = min(S / height, S / width)
        new_h, new_w = (int(v) for v in np.round(np.multiply((height, width), ratio)))
        assert content_size(out["padding_mask"]) == (new_h, new_w)
        pan = Image.open(d["pan_seg_file_name"]).convert("RGB").resize((new_w, new_h), Image.Resampling.NEAREST)
        pan = rgb2id(np.asarray(pan))
        segments = [s for s in d["segments_info"] if not s.get("iscrowd")]
        inst = out["instances"]
        assert inst.gt_classes.tolist() == [s["category_id"] for s in segments]
        for k, s in enumerate(segments):
            np.testing.assert_array_equal(inst.gt_masks[k, :new_h, :new_w].numpy(), pan == s["id"])
        # through the registry name, with random flips and scales
        check_common(random_mapper(d))
