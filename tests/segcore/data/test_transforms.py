"""Augmentations and transforms on tiny arrays (segcore.data.transforms)."""
import numpy as np
import pytest

from segcore.data import transforms as T


def _image_and_seg(h, w):
    """An image whose red channel encodes the column and a label map equal to the column index."""
    cols = np.tile(np.arange(w), (h, 1))
    image = np.stack([cols * 10 % 256, np.zeros_like(cols), np.full_like(cols, 7)], axis=-1).astype(np.uint8)
    seg = cols.astype(np.float64)
    return image, seg


@pytest.mark.parametrize(
    "hw,short,max_size,expected",
    [((20, 30), 10, 1000, (10, 15)), ((30, 20), 10, 1000, (15, 10)), ((20, 40), 20, 25, (13, 25)), ((8, 8), 8, 100, (8, 8))],
)
def test_resize_shortest_edge_sizes(hw, short, max_size, expected):
    image = np.zeros(hw + (3,), np.uint8)
    seg = np.zeros(hw, np.float64)
    aug_input = T.AugInput(image, sem_seg=seg)
    T.AugmentationList([T.ResizeShortestEdge(short, max_size, "choice")])(aug_input)
    assert aug_input.image.shape == expected + (3,) and aug_input.image.dtype == np.uint8
    assert aug_input.sem_seg.shape == expected and aug_input.sem_seg.dtype == np.float64


def test_resize_interpolation_image_bilinear_seg_nearest():
    image, seg = _image_and_seg(4, 8)
    seg = seg * 10  # labels 0, 10, ..., 70
    tfm = T.ResizeTransform(4, 8, 8, 16)
    out_seg = tfm.apply_segmentation(seg)
    assert set(np.unique(out_seg)) <= set(np.unique(seg))  # nearest: no new labels
    np.testing.assert_array_equal(out_seg[:, ::2], seg.repeat(2, axis=0))
    out_img = tfm.apply_image(image)
    red = out_img[0, :, 0].astype(int)
    assert len(set(red.tolist()) - set(image[0, :, 0].tolist())) > 0  # bilinear makes in-between values
    assert np.all(np.diff(red) >= 0)
    with pytest.raises(ValueError, match="4x8"):
        tfm.apply_image(np.zeros((5, 8, 3), np.uint8))


def test_resize_shortest_edge_sampling_styles_and_determinism():
    image = np.zeros((10, 20, 3), np.uint8)
    aug = T.ResizeShortestEdge((4, 6), 1000, "range")
    np.random.seed(0)
    sizes = [aug.get_transform(image).new_h for _ in range(40)]
    assert set(sizes) == {4, 5, 6}
    np.random.seed(0)
    assert [aug.get_transform(image).new_h for _ in range(40)] == sizes
    choice = T.ResizeShortestEdge([3, 9], 1000, "choice")
    assert {choice.get_transform(image).new_h for _ in range(40)} == {3, 9}
    with pytest.raises(ValueError):
        T.ResizeShortestEdge([1, 2, 3], 10, "range")
    with pytest.raises(ValueError):
        T.ResizeShortestEdge(5, 10, "uniform")


@pytest.mark.parametrize("horizontal", [True, False])
def test_random_flip_applies_equally_to_image_and_seg(horizontal):
    image, seg = _image_and_seg(3, 5)
    if not horizontal:
        image, seg = image.transpose(1, 0, 2).copy(), seg.T.copy()
    aug_input = T.AugInput(image, sem_seg=seg)
    tfms = aug_input.apply_augmentations([T.RandomFlip(prob=1.0, horizontal=horizontal, vertical=not horizontal)])
    axis = 1 if horizontal else 0
    np.testing.assert_array_equal(aug_input.image, np.flip(image, axis=axis))
    np.testing.assert_array_equal(aug_input.sem_seg, np.flip(seg, axis=axis))
    # pixel-to-label correspondence is kept: red == 10 * label
    np.testing.assert_array_equal(aug_input.image[..., 0], (aug_input.sem_seg * 10).astype(np.uint8))
    # the returned transforms replay the same flip on other data
    np.testing.assert_array_equal(tfms.apply_segmentation(seg), aug_input.sem_seg)
    no_flip = T.AugInput(image, sem_seg=seg)
    no_flip.apply_augmentations([T.RandomFlip(prob=0.0)])
    np.testing.assert_array_equal(no_flip.image, image)
    with pytest.raises(ValueError):
        T.RandomFlip(horizontal=True, vertical=True)


def test_random_crop_types():
    image = np.zeros((10, 20, 3), np.uint8)
    np.random.seed(3)
    assert T.RandomCrop("relative", (0.5, 0.25)).get_crop_size((10, 20)) == (5, 5)
    assert T.RandomCrop("absolute", (4, 100)).get_crop_size((10, 20)) == (4, 20)
    for _ in range(20):
        ch, cw = T.RandomCrop("relative_range", (0.5, 0.5)).get_crop_size((10, 20))
        assert 5 <= ch <= 10 and 10 <= cw <= 20
        ch, cw = T.RandomCrop("absolute_range", (3, 8)).get_crop_size((10, 20))
        assert 3 <= ch <= 8 and 3 <= cw <= 8
        tfm = T.RandomCrop("absolute", (4, 6)).get_transform(image)
        assert tfm.apply_image(image).shape == (4, 6, 3)
        assert 0 <= tfm.x0 <= 14 and 0 <= tfm.y0 <= 6
    with pytest.raises(ValueError, match="crop_type"):
        T.RandomCrop("square", (1, 1))


def _two_halves():
    seg = np.zeros((6, 10), np.float64)
    seg[:, 5:] = 1  # left half category 0, right half category 1
    return np.zeros((6, 10, 3), np.uint8), seg


def test_crop_category_area_constraint_avoids_single_category_windows():
    image, seg = _two_halves()
    constrained = T.RandomCrop_CategoryAreaConstraint("absolute", (6, 5), single_category_max_area=0.9)
    plain = T.RandomCrop_CategoryAreaConstraint("absolute", (6, 5), single_category_max_area=1.0)
    plain_single = 0
    for seed in range(30):
        np.random.seed(seed)
        crop = constrained.get_transform(image, seg).apply_segmentation(seg)
        labels, counts = np.unique(crop, return_counts=True)
        assert len(labels) == 2 and counts.max() < 0.9 * counts.sum()
        np.random.seed(seed)
        plain_single += len(np.unique(plain.get_transform(image, seg).apply_segmentation(seg))) == 1
    assert plain_single > 0  # without the constraint single-category windows do occur


def test_crop_category_area_constraint_gives_up_after_ten_tries():
    image, seg = _two_halves()
    # category 1 ignored: only one counted category in any window, so no window is acceptable
    aug = T.RandomCrop_CategoryAreaConstraint("absolute", (6, 5), 0.9, ignored_category=1)
    np.random.seed(7)
    tfm = aug.get_transform(image, seg)
    np.random.seed(7)
    draws = [(np.random.randint(1), np.random.randint(6)) for _ in range(10)]
    assert (tfm.y0, tfm.x0) == draws[-1] and (tfm.h, tfm.w) == (6, 5)


def test_color_aug_ssd():
    rng = np.random.RandomState(0)
    image = rng.randint(0, 256, (8, 9, 3), dtype=np.uint8)
    seg = rng.randint(0, 5, (8, 9)).astype(np.float64)
    tfm = T.ColorAugSSDTransform(img_format="RGB")
    outs = []
    for seed in range(6):
        np.random.seed(seed)
        out = tfm.apply_image(image)
        assert out.shape == image.shape and out.dtype == np.uint8
        np.random.seed(seed)
        np.testing.assert_array_equal(tfm.apply_image(image), out)  # reproducible under np.random seeding
        # RGB mode == BGR mode on the channel-swapped image
        np.random.seed(seed)
        bgr = T.ColorAugSSDTransform(img_format="BGR").apply_image(np.ascontiguousarray(image[:, :, ::-1]))
        np.testing.assert_array_equal(bgr[:, :, ::-1], out)
        outs.append(out)
    assert any(not np.array_equal(o, image) for o in outs)
    assert tfm.apply_segmentation(seg) is seg
    # as an element of an augmentation list (wrapped), the label map is untouched
    aug_input = T.AugInput(image, sem_seg=seg)
    aug_input.apply_augmentations([tfm])
    np.testing.assert_array_equal(aug_input.sem_seg, seg)
    with pytest.raises(ValueError, match="L"):
        T.ColorAugSSDTransform(img_format="L")


def test_apply_transform_gens_with_image_only():
    image = np.zeros((4, 6, 3), np.uint8)
    out, tfms = T.apply_transform_gens([T.Resize((2, 3))], image)
    assert out.shape == (2, 3, 3) and isinstance(tfms, T.TransformList)
    with pytest.raises(TypeError):
        T.AugInput(np.zeros((2, 2), np.int32))


def test_resize_shortest_edge_keeps_at_least_one_pixel():
    # 1 x 4000 with short edge 512 and max 1333: the long side is capped, the short one would round to 0
    assert T.ResizeShortestEdge.get_output_shape(1, 4000, 512, 1333) == (1, 1333)
    assert T.ResizeShortestEdge.get_output_shape(4000, 1, 512, 1333) == (1333, 1)
    image = np.zeros((1, 4000, 3), np.uint8)
    out = T.ResizeShortestEdge(512, 1333).get_transform(image).apply_image(image)
    assert out.shape == (1, 1333, 3)
