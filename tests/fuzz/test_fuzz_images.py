"""Fuzzing the image and annotation readers and the training mappers with PNG / JPEG files.

Random and mutated bytes must be read or rejected with an error naming the file; valid images of
every mode (grayscale, palette, RGBA, CMYK, 16-bit, bilevel, 1x1, EXIF-rotated) must be read as
``INPUT.FORMAT`` asks, upright as Detectron2 turns them; the mappers must give consistent outputs
for any of them, or an error naming the file.
"""
from __future__ import annotations

import io
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

import mask_former  # noqa: F401  (registers the mappers)
from mask2former.data.dataset_mappers import COCOPanopticLSJDatasetMapper
from mask2former.data.dataset_mappers.lsj import build_lsj_augmentation
from mask_former.data.dataset_mappers import (
    DETRPanopticDatasetMapper,
    MaskFormerInstanceDatasetMapper,
    MaskFormerPanopticDatasetMapper,
    MaskFormerSemanticDatasetMapper,
)
from segcore.data import detection_utils as utils
from segcore.data import transforms as T
from segcore.data.panoptic_utils import id2rgb
from segcore.structures import BoxMode
from tests.fuzz import fuzz_settings, mutated_bytes

EXIF_ORIENTATION = 0x0112
IMAGE_MODES = ("RGB", "L", "P", "RGBA", "I;16", "1")
FORMATS = ("RGB", "BGR", "L")


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("image_fuzz")


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _make_seeds():
    rng = np.random.RandomState(0)
    rgb = rng.randint(0, 256, (10, 7, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    return [
        _encode(Image.fromarray(rgb), "PNG"),
        _encode(Image.fromarray(rgb[..., 0]), "PNG"),
        _encode(Image.fromarray(rgb).quantize(16), "PNG"),
        _encode(Image.fromarray(rgb[..., 0].astype(np.uint16) * 257), "PNG"),
        _encode(Image.fromarray(np.dstack([rgb, rgb[..., :1]])), "PNG"),
        _encode(Image.fromarray(rgb), "PNG", exif=exif),
        _encode(Image.fromarray(rgb), "JPEG", exif=exif),
        _encode(Image.fromarray(rgb[..., 0]), "JPEG"),
        _encode(Image.fromarray(rgb).convert("CMYK"), "JPEG"),
    ]


SEEDS = _make_seeds()


def _check_all_readers(path: str) -> None:
    """Each reader gives a well-formed array or an error that names ``path``."""
    for fmt in FORMATS:
        try:
            arr = utils.read_image(path, fmt)
        except utils.ImageReadError as e:
            assert path in str(e)
        else:
            assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == (1 if fmt == "L" else 3)
            assert arr.shape[0] >= 1 and arr.shape[1] >= 1 and arr.flags.writeable
    try:
        labels = utils.read_sem_seg(path)
    except (utils.ImageReadError, ValueError) as e:
        assert path in str(e)
    else:
        assert labels.ndim == 2 and np.issubdtype(labels.dtype, np.integer) and labels.dtype.isnative
    try:
        pan = utils.read_pan_seg(path)
    except (utils.ImageReadError, ValueError) as e:
        assert path in str(e)
    else:
        assert pan.dtype == np.uint8 and pan.ndim == 3 and pan.shape[2] == 3


@fuzz_settings(60)
@given(data=st.data(), ext=st.sampled_from(["png", "jpg"]))
def test_mutated_images_are_read_or_rejected_with_the_file_name(fuzz_dir, data, ext):
    path = str(fuzz_dir / f"mutated.{ext}")
    with open(path, "wb") as f:
        f.write(data.draw(mutated_bytes(SEEDS)))
    _check_all_readers(path)


@fuzz_settings(30)
@given(blob=st.binary(max_size=256), ext=st.sampled_from(["png", "jpg"]))
def test_random_bytes_are_rejected_with_the_file_name(fuzz_dir, blob, ext):
    path = str(fuzz_dir / f"random.{ext}")
    with open(path, "wb") as f:
        f.write(blob)
    _check_all_readers(path)


# ---------------------------------------------------------------------------------- valid images
def _upright(arr: np.ndarray, orientation: int) -> np.ndarray:
    """The image as the EXIF orientation tag says to display it (numpy, not PIL)."""
    return {
        1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 2).swapaxes(0, 1), 8: lambda a: np.rot90(a, 1),
    }[orientation](arr)


@st.composite
def images(draw, modes=IMAGE_MODES, max_side=12):
    """(PIL image, its pixels as 8-bit RGB): one of ``modes``, 1 to ``max_side`` pixels a side."""
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    mode = draw(st.sampled_from(modes))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.RandomState(seed)
    if mode == "RGB":
        rgb = rng.randint(0, 256, (h, w, 3), dtype=np.uint8)
        return Image.fromarray(rgb), rgb
    if mode == "RGBA":
        rgba = rng.randint(0, 256, (h, w, 4), dtype=np.uint8)
        return Image.fromarray(rgba), rgba[..., :3]  # alpha dropped, as Detectron2
    if mode == "L":
        gray = rng.randint(0, 256, (h, w), dtype=np.uint8)
        return Image.fromarray(gray), np.repeat(gray[..., None], 3, axis=2)
    if mode == "P":
        palette = rng.randint(0, 256, (256, 3), dtype=np.uint8)
        index = rng.randint(0, 256, (h, w), dtype=np.uint8)
        image = Image.fromarray(index, "P")
        image.putpalette(palette.ravel().tolist())
        return image, palette[index]
    if mode == "I;16":
        value = rng.randint(0, 65536, (h, w)).astype(np.uint16)
        return Image.fromarray(value), np.repeat((value >> 8).astype(np.uint8)[..., None], 3, axis=2)
    bits = rng.randint(0, 2, (h, w)).astype(bool)  # "1"
    return Image.fromarray(bits), np.repeat(np.where(bits, 255, 0).astype(np.uint8)[..., None], 3, axis=2)


@fuzz_settings(80)
@given(sample=images(), orientation=st.integers(1, 8), fmt=st.sampled_from(FORMATS))
def test_valid_images_are_read_upright_in_the_requested_format(fuzz_dir, sample, orientation, fmt):
    image, rgb = sample
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    path = str(fuzz_dir / "valid.png")  # PNG: lossless, keeps the EXIF block
    image.save(path, exif=exif)
    expected = _upright(rgb, orientation)
    out = utils.read_image(path, fmt)
    assert out.flags.writeable
    if fmt == "L":
        if image.mode in ("L", "I;16", "1"):  # single channel: the (8-bit) value itself
            reference = expected[..., 0]
        else:  # PIL's ITU-R 601-2 luma of the colours
            reference = np.asarray(Image.fromarray(np.ascontiguousarray(expected)).convert("L"))
        np.testing.assert_array_equal(out[..., 0], reference)
    else:
        np.testing.assert_array_equal(out, expected if fmt == "RGB" else expected[:, :, ::-1])


@fuzz_settings(30)
@given(sample=images(modes=("RGB",)), quality=st.integers(70, 100))
def test_cmyk_and_grayscale_jpegs_give_three_uint8_channels(fuzz_dir, sample, quality):
    image, _ = sample
    for mode in ("CMYK", "L"):
        path = str(fuzz_dir / f"{mode}.jpg")
        image.convert(mode).save(path, quality=quality)
        for fmt in FORMATS:
            out = utils.read_image(path, fmt)
            assert out.shape == (image.height, image.width, 1 if fmt == "L" else 3) and out.dtype == np.uint8
        if mode == "L":  # grey stays grey
            rgb = utils.read_image(path, "RGB")
            assert (rgb == rgb[..., :1]).all()


@fuzz_settings(40)
@given(h=st.integers(1, 12), w=st.integers(1, 12), seed=st.integers(0, 2**31 - 1),
       mode=st.sampled_from(["L", "P", "I;16", "1"]))
def test_label_images_of_every_mode_are_read_exactly(fuzz_dir, h, w, seed, mode):
    rng = np.random.RandomState(seed)
    if mode == "I;16":
        labels = rng.randint(0, 65536, (h, w)).astype(np.uint16)
        image = Image.fromarray(labels)
    elif mode == "1":
        labels = rng.randint(0, 2, (h, w)).astype(np.uint8)
        image = Image.fromarray(labels.astype(bool))
    else:
        labels = rng.randint(0, 256, (h, w)).astype(np.uint8)
        image = Image.fromarray(labels, mode)
        if mode == "P":
            image.putpalette(rng.randint(0, 256, 768).tolist())
    path = str(fuzz_dir / "labels.png")
    image.save(path)
    out = utils.read_sem_seg(path)
    np.testing.assert_array_equal(out, labels)  # the class ids, never the palette colours
    assert out.flags.writeable


# ---------------------------------------------------------------------------------- mappers
K = 6
IGNORE = 255


@fuzz_settings(25)
@given(sample=images(max_side=40), data=st.data(), label_mode=st.sampled_from(["L", "P", "I;16"]))
def test_semantic_mapper_on_any_image_mode_and_size(fuzz_dir, sample, data, label_mode):
    image, _ = sample
    h, w = image.height, image.width
    labels = np.asarray(data.draw(st.lists(st.sampled_from(list(range(K)) + [IGNORE]), min_size=h * w,
                                           max_size=h * w))).reshape(h, w)
    image_path, label_path = str(fuzz_dir / "sem_image.png"), str(fuzz_dir / "sem_labels.png")
    image.save(image_path)
    if label_mode == "I;16":
        label_image = Image.fromarray(labels.astype(np.uint16))
    else:
        label_image = Image.fromarray(labels.astype(np.uint8), label_mode)
        if label_mode == "P":  # a full palette: without one PIL renumbers the indices when saving
            label_image.putpalette(np.random.RandomState(h * w).randint(0, 256, 768).tolist())
    label_image.save(label_path)
    crop = data.draw(st.integers(4, 24))
    augs = [T.ResizeShortestEdge(data.draw(st.integers(8, 24)), 48),
            T.RandomCrop_CategoryAreaConstraint("absolute", (crop, crop), 1.0, IGNORE), T.RandomFlip()]
    fmt = data.draw(st.sampled_from(["RGB", "BGR"]))
    mapper = MaskFormerSemanticDatasetMapper(augmentations=augs, image_format=fmt, ignore_label=IGNORE,
                                             size_divisibility=48, num_classes=K)
    out = mapper({"file_name": image_path, "sem_seg_file_name": label_path, "height": h, "width": w})
    assert out["image"].shape == (3, 48, 48) and out["sem_seg"].shape == (48, 48)
    sem = out["sem_seg"]
    assert set(sem.unique().tolist()) <= set(np.unique(labels).tolist()) | {IGNORE}
    inst = out["instances"]
    assert inst.gt_classes.tolist() == sorted(set(sem.unique().tolist()) - {IGNORE})
    for k, c in enumerate(inst.gt_classes.tolist()):
        assert (inst.gt_masks[k] == (sem == c)).all()


@fuzz_settings(20)
@given(data=st.data())
def test_mappers_with_mutated_image_files_name_the_file(fuzz_dir, data):
    path = str(fuzz_dir / "mapper_mutated.png")
    with open(path, "wb") as f:
        f.write(data.draw(mutated_bytes(SEEDS[:6])))
    try:
        h, w = utils.read_image(path, "RGB").shape[:2]
    except utils.ImageReadError:
        h = w = None
    labels = str(fuzz_dir / "mapper_labels.png")
    Image.fromarray(np.zeros((h or 1, w or 1), np.uint8)).save(labels)
    mapper = MaskFormerSemanticDatasetMapper(augmentations=[T.ResizeShortestEdge(16, 64)], image_format="RGB",
                                             ignore_label=IGNORE, size_divisibility=-1, num_classes=K)
    try:
        out = mapper({"file_name": path, "sem_seg_file_name": labels})
    except utils.ImageReadError as e:
        assert h is None and path in str(e)
    else:
        assert out["image"].shape[0] == 3


def _panoptic_files(fuzz_dir, h, w, pan_mode="RGB"):
    ids = np.zeros((h, w), np.int64)
    ids[: max(1, h // 2)] = 1
    ids[h // 2:, : max(1, w // 2)] = 300
    rgb = id2rgb(ids)
    image_path, pan_path = str(fuzz_dir / "pan_image.png"), str(fuzz_dir / "pan.png")
    Image.fromarray(np.random.RandomState(h * 1000 + w).randint(0, 256, (h, w, 3), dtype=np.uint8)).save(image_path)
    pan = Image.fromarray(rgb)
    if pan_mode == "P":  # what PNG optimizers make of a PNG with few colours
        pan = pan.quantize(colors=4, method=Image.Quantize.MAXCOVERAGE)
        assert (np.asarray(pan.convert("RGB")) == rgb).all()
    pan.save(pan_path)
    segments = [{"id": 1, "category_id": 2, "iscrowd": 0}, {"id": 300, "category_id": 4, "iscrowd": 0}]
    return {"file_name": image_path, "pan_seg_file_name": pan_path, "segments_info": segments}, ids


@pytest.mark.parametrize("pan_mode", ["RGB", "P"])
def test_panoptic_mappers_read_palette_panoptic_pngs(fuzz_dir, pan_mode):
    d, ids = _panoptic_files(fuzz_dir, 12, 16, pan_mode)
    mappers = [
        MaskFormerPanopticDatasetMapper(augmentations=[], image_format="RGB", ignore_label=IGNORE,
                                        size_divisibility=-1, num_classes=K),
        DETRPanopticDatasetMapper(crop_gen=None, tfm_gens=[T.ResizeShortestEdge(12, 100)], image_format="RGB",
                                  num_classes=K),
        COCOPanopticLSJDatasetMapper(augmentations=build_lsj_augmentation(image_size=16, min_scale=1.0, max_scale=1.0,
                                                                          random_flip="none"),
                                     image_format="RGB", num_classes=K),
    ]
    for mapper in mappers:
        inst = mapper(d)["instances"]
        assert inst.gt_classes.tolist() == [2, 4]
        np.testing.assert_array_equal(inst.gt_masks[1, :12, :16].numpy(), ids == 300)


def test_panoptic_mapper_rejects_a_16_bit_panoptic_png(fuzz_dir):
    d, _ = _panoptic_files(fuzz_dir, 6, 8)
    Image.fromarray(np.full((6, 8), 300, np.uint16)).save(d["pan_seg_file_name"])
    mapper = MaskFormerPanopticDatasetMapper(augmentations=[], image_format="RGB", ignore_label=IGNORE,
                                             size_divisibility=-1)
    with pytest.raises(ValueError, match="pan.png"):
        mapper(d)


# extreme shapes: 1x1, one pixel high or wide (an aspect ratio of 4000), larger than the crop
EXTREME_SHAPES = [(1, 1), (1, 4000), (4000, 1), (3, 2), (200, 300)]


@pytest.mark.parametrize("shape", EXTREME_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_mappers_on_extreme_image_shapes(fuzz_dir, shape):
    """Each mapper gives outputs of its documented size, or (a resize that would give less than one
    pixel, see ResizeShortestEdge) an error naming the file."""
    h, w = shape
    d, _ = _panoptic_files(fuzz_dir, h, w)
    labels = str(fuzz_dir / "extreme_labels.png")
    Image.fromarray(np.full((h, w), 1, np.uint8)).save(labels)
    polygon = [[0.0, 0.0, float(w), 0.0, float(w), float(h), 0.0, float(h)]]
    annos = [{"bbox": [0, 0, w, h], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 3, "segmentation": polygon}]
    resize = T.ResizeShortestEdge(32, 128)
    crop = T.RandomCrop("absolute", (32, 32))
    cases = [
        (MaskFormerSemanticDatasetMapper(augmentations=[resize, crop], image_format="RGB", ignore_label=IGNORE,
                                         size_divisibility=32, num_classes=K),
         {"file_name": d["file_name"], "sem_seg_file_name": labels}, (32, 32)),
        (MaskFormerPanopticDatasetMapper(augmentations=[resize, crop], image_format="RGB", ignore_label=IGNORE,
                                         size_divisibility=32, num_classes=K), d, (32, 32)),
        (MaskFormerInstanceDatasetMapper(augmentations=[resize, crop], image_format="RGB", size_divisibility=32,
                                         num_classes=K), {"file_name": d["file_name"], "annotations": annos}, (32, 32)),
        (COCOPanopticLSJDatasetMapper(augmentations=build_lsj_augmentation(image_size=32, min_scale=0.5, max_scale=2.0),
                                      image_format="RGB", num_classes=K), d, (32, 32)),
    ]
    for mapper, dataset_dict, size in cases:
        try:
            out = mapper(dataset_dict)
        except ValueError as e:
            assert d["file_name"] in str(e) and "Cannot augment" in str(e), f"{type(mapper).__name__}: {e}"
            continue
        assert tuple(out["image"].shape) == (3, *size), type(mapper).__name__
        assert out["instances"].gt_masks.shape[-2:] == size
        assert len(out["instances"]) >= 1 and out["instances"].gt_classes.max() < K
    assert os.path.exists(d["file_name"])
