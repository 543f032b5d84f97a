"""Large-scale-jitter augmentations: ResizeScale and FixedSizeCrop (segcore.data.transforms)."""
import numpy as np
import pycocotools.mask as mask_util
import pytest

from segcore.data import transforms as T
from segcore.data.detection_utils import annotations_to_instances, transform_instance_annotations
from segcore.structures import BoxMode


def _fix_uniform(monkeypatch, value):
    """Make every ``np.random.uniform(low, high)`` draw return ``low + value * (high - low)``."""
    draws = []

    def uniform(low=0.0, high=1.0, size=None):
        draws.append((low, high))
        return low + value * (high - low)

    monkeypatch.setattr(np.random, "uniform", uniform)
    return draws


def _coded_image(h, w):
    """(h, w, 3) uint8 image whose pixels encode their position, and a float label map 0..h*w-1."""
    idx = np.arange(h * w).reshape(h, w)
    image = np.stack([idx % 251, idx // 251, np.full_like(idx, 9)], axis=-1).astype(np.uint8)
    return image, idx.astype(np.float64)


# ---------------------------------------------------------------- ResizeScale


@pytest.mark.parametrize(
    "hw,target,scale,expected",
    [
        ((100, 200), (64, 64), 0.5, (16, 32)),  # box 32x32, width limits: ratio 0.16
        ((30, 20), (50, 40), 2.0, (100, 67)),  # box 100x80, height limits: ratio 10/3, 66.67 -> 67
        ((64, 64), (64, 64), 1.0, (64, 64)),
        ((40, 10), (1024, 1024), 0.1, (102, 26)),  # box 102.4 square: ratio 2.56, 25.6 -> 26
    ],
)
def test_resize_scale_output_size(monkeypatch, hw, target, scale, expected):
    aug = T.ResizeScale(0.1, 2.0, *target)
    draws = _fix_uniform(monkeypatch, (scale - 0.1) / 1.9)
    tfm = aug.get_transform(np.zeros(hw + (3,), np.uint8))
    assert draws == [(0.1, 2.0)]  # one draw from numpy's global generator, in [min_scale, max_scale)
    assert isinstance(tfm, T.ResizeTransform)
    assert (tfm.h, tfm.w) == hw and (tfm.new_h, tfm.new_w) == expected


def test_resize_scale_keeps_aspect_ratio_and_fits_the_scaled_box():
    aug = T.ResizeScale(0.3, 1.7, 96, 128)
    rng = np.random.RandomState(0)
    np.random.seed(0)
    scales = []
    for _ in range(50):
        h, w = rng.randint(8, 400, size=2)
        state = np.random.get_state()
        scale = np.random.uniform(0.3, 1.7)
        np.random.set_state(state)
        tfm = aug.get_transform(np.zeros((h, w), np.uint8))
        scales.append(scale)
        box_h, box_w = 96 * scale, 128 * scale
        assert tfm.new_h <= box_h + 0.5 and tfm.new_w <= box_w + 0.5  # fits (up to rounding)
        assert abs(tfm.new_h - box_h) <= 0.5 or abs(tfm.new_w - box_w) <= 0.5  # touches one side
        assert tfm.new_w / tfm.new_h == pytest.approx(w / h, rel=1.0 / min(tfm.new_h, tfm.new_w))
    assert min(scales) < 0.6 and max(scales) > 1.4


def test_resize_scale_resizes_image_seg_and_boxes_together(monkeypatch):
    image, seg = _coded_image(20, 30)
    boxes = np.array([[3.0, 2.0, 9.0, 10.0]])
    _fix_uniform(monkeypatch, 1.0)  # scale 2: box 80x80, ratio min(4, 8/3) -> 53x80
    aug_input = T.AugInput(image, boxes=boxes, sem_seg=seg)
    T.AugmentationList([T.ResizeScale(1.0, 2.0, 40, 40)])(aug_input)
    assert aug_input.image.shape == (53, 80, 3) and aug_input.image.dtype == np.uint8
    assert aug_input.sem_seg.shape == (53, 80)
    assert set(np.unique(aug_input.sem_seg)) <= set(np.unique(seg))  # nearest: no new labels
    np.testing.assert_allclose(aug_input.boxes, [[3 * 80 / 30, 2 * 53 / 20, 9 * 80 / 30, 10 * 53 / 20]])


def test_resize_scale_never_makes_an_empty_image(monkeypatch):
    _fix_uniform(monkeypatch, 0.0)
    tfm = T.ResizeScale(0.1, 1.0, 16, 16).get_transform(np.zeros((1000, 10), np.uint8))
    assert (tfm.new_h, tfm.new_w) == (2, 1)


@pytest.mark.parametrize("args", [(0.0, 1.0, 8, 8), (2.0, 1.0, 8, 8), (0.5, 1.0, 0, 8), (0.5, 1.0, 8, -1)])
def test_resize_scale_rejects_bad_arguments(args):
    with pytest.raises(ValueError, match="ResizeScale"):
        T.ResizeScale(*args)


# ---------------------------------------------------------------- FixedSizeCrop


def test_fixed_size_crop_pads_a_smaller_image_with_separate_values():
    image, seg = _coded_image(5, 7)
    aug_input = T.AugInput(image, sem_seg=seg)
    tfms = T.AugmentationList([T.FixedSizeCrop((8, 10))])(aug_input)
    assert aug_input.image.shape == (8, 10, 3) and aug_input.sem_seg.shape == (8, 10)
    np.testing.assert_array_equal(aug_input.image[:5, :7], image)  # top-left: no offset, no shift
    np.testing.assert_array_equal(aug_input.sem_seg[:5, :7], seg)
    assert (aug_input.image[5:] == 128).all() and (aug_input.image[:, 7:] == 128).all()
    assert (aug_input.sem_seg[5:] == 255).all() and (aug_input.sem_seg[:, 7:] == 255).all()
    # and the transform inverts exactly
    np.testing.assert_array_equal(tfms.inverse().apply_image(aug_input.image), image)


def test_fixed_size_crop_custom_pad_values_and_float_images():
    image = np.ones((3, 3, 3), np.float32)
    tfm = T.FixedSizeCrop((4, 4), pad_value=-1.5, seg_pad_value=7).get_transform(image)
    out = tfm.apply_image(image)
    assert out.dtype == np.float32 and out[3, 3, 0] == -1.5 and out[0, 0, 0] == 1.0
    assert tfm.apply_segmentation(np.zeros((3, 3), np.uint8))[3, 0] == 7


@pytest.mark.parametrize("u,offset", [(0.0, (0, 0)), (1.0, (6, 9)), (0.5, (3, 4)), (0.3, (2, 3))])
def test_fixed_size_crop_of_a_larger_image(monkeypatch, u, offset):
    image, seg = _coded_image(16, 19)
    draws = _fix_uniform(monkeypatch, u)
    tfm = T.FixedSizeCrop((10, 10)).get_transform(image)
    assert draws == [(0.0, 1.0)]  # one draw shared by both axes
    y0, x0 = offset  # round(u * (16 - 10, 19 - 10)); 0.5 * 9 = 4.5 rounds to even
    out = tfm.apply_image(image)
    assert out.shape == (10, 10, 3)
    np.testing.assert_array_equal(out, image[y0 : y0 + 10, x0 : x0 + 10])
    np.testing.assert_array_equal(tfm.apply_segmentation(seg), seg[y0 : y0 + 10, x0 : x0 + 10])
    # boxes move by the crop offset
    boxes = tfm.apply_box(np.array([[10.0, 8.0, 12.0, 9.5]]))
    np.testing.assert_allclose(boxes, [[10 - x0, 8 - y0, 12 - x0, 9.5 - y0]])


def test_fixed_size_crop_taller_but_narrower_image(monkeypatch):
    image, seg = _coded_image(12, 4)
    _fix_uniform(monkeypatch, 1.0)
    tfm = T.FixedSizeCrop((6, 6)).get_transform(image)
    out = tfm.apply_image(image)
    assert out.shape == (6, 6, 3)
    np.testing.assert_array_equal(out[:, :4], image[6:12])  # cropped in height only
    assert (out[:, 4:] == 128).all()
    assert (tfm.apply_segmentation(seg)[:, 4:] == 255).all()


def test_fixed_size_crop_without_padding_keeps_smaller_inputs_smaller():
    image, _ = _coded_image(5, 30)
    np.random.seed(0)
    tfm = T.FixedSizeCrop((8, 10), pad=False).get_transform(image)
    assert len(tfm.transforms) == 1 and isinstance(tfm.transforms[0], T.CropTransform)
    assert tfm.apply_image(image).shape == (5, 10, 3)


def test_fixed_size_crop_accepts_an_int_and_rejects_bad_sizes():
    assert T.FixedSizeCrop(6).crop_size == (6, 6)
    for bad in [(0, 5), (5,), (4.5, 4), (1, 2, 3), -3]:
        with pytest.raises(ValueError, match="crop_size"):
            T.FixedSizeCrop(bad)


def test_fixed_size_crop_moves_and_clips_instance_annotations(monkeypatch):
    _fix_uniform(monkeypatch, 1.0)
    image = np.zeros((20, 30, 3), np.uint8)
    tfm = T.FixedSizeCrop((16, 16)).get_transform(image)  # offset (y, x) = (4, 14)
    inside = {
        "bbox": [16.0, 6.0, 4.0, 5.0],
        "bbox_mode": BoxMode.XYWH_ABS,
        "segmentation": [[16.0, 6.0, 20.0, 6.0, 20.0, 11.0, 16.0, 11.0]],
        "category_id": 1,
    }
    straddling = {  # x from 8 to 20: the part left of x = 14 is cut away
        "bbox": [8.0, 10.0, 12.0, 4.0],
        "bbox_mode": BoxMode.XYWH_ABS,
        "segmentation": [[8.0, 10.0, 20.0, 10.0, 20.0, 14.0, 8.0, 14.0]],
        "category_id": 2,
    }
    annos = [transform_instance_annotations(dict(a), tfm, (16, 16)) for a in (inside, straddling)]
    np.testing.assert_allclose(annos[0]["bbox"], [2, 2, 6, 7])
    np.testing.assert_allclose(annos[0]["segmentation"][0].reshape(-1, 2), [[2, 2], [6, 2], [6, 7], [2, 7]])
    np.testing.assert_allclose(annos[1]["bbox"], [0, 6, 6, 10])  # shifted, then clipped at x = 0
    seg = annos[1]["segmentation"][0].reshape(-1, 2)
    assert seg[:, 0].min() == 0 and seg[:, 0].max() == 6 and set(seg[:, 1]) == {6.0, 10.0}
    instances = annotations_to_instances(annos, (16, 16), mask_format="bitmask")
    masks = instances.gt_masks.tensor.numpy()
    assert masks[0].sum() == 4 * 5 and masks[0][2:7, 2:6].all()
    assert masks[1].sum() == 6 * 4 and masks[1][6:10, 0:6].all()


def test_fixed_size_crop_padding_is_not_part_of_an_rle_instance():
    mask = np.zeros((10, 12), np.uint8, order="F")
    mask[2:5, 3:7] = 1
    rle = mask_util.encode(mask)
    anno = {"bbox": [3, 2, 4, 3], "bbox_mode": BoxMode.XYWH_ABS, "segmentation": rle, "category_id": 0}
    tfm = T.FixedSizeCrop((16, 16)).get_transform(np.zeros((10, 12, 3), np.uint8))
    anno = transform_instance_annotations(anno, tfm, (16, 16))
    instances = annotations_to_instances([anno], (16, 16), mask_format="bitmask")
    assert int(instances.gt_masks.tensor.sum()) == 12


def test_lsj_pipeline_always_gives_the_crop_size():
    augs = [T.ResizeScale(0.1, 2.0, 64, 64), T.FixedSizeCrop((64, 64))]
    np.random.seed(0)
    sizes = set()
    for h, w in [(40, 90), (120, 60), (64, 64), (7, 300)] * 5:
        image, seg = _coded_image(h, w)
        aug_input = T.AugInput(image, sem_seg=seg)
        tfms = T.AugmentationList(augs)(aug_input)
        sizes.add(tfms.transforms[0].new_h)
        assert aug_input.image.shape == (64, 64, 3) and aug_input.sem_seg.shape == (64, 64)
    assert len(sizes) > 5  # the scale really varies
