"""The quickstart dataset generator: ADE20K layout, label values, exact masks, determinism and
completion marker (the registration of what it writes: tests/segcore/data/test_datasets_quickstart.py)."""
import filecmp
import itertools
import math
import os
import re

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from segcore.data.datasets.quickstart import load_quickstart_categories
from segcore.quickstart import MANIFEST_NAME, generate_quickstart, iter_scenes
from segcore.quickstart.generate import main as generate_main
from segcore.quickstart.layout import LAYOUTS
from segcore.quickstart.scene import SceneParams
from segcore.quickstart.shapes import SHAPES, shape_mask
from segcore.quickstart.styles import CLASS_STYLES, style_for
from segcore.quickstart.textures import render_texture

SIZE = 128
NUM_TRAIN, NUM_VAL = 4, 2
SPLITS = {"training": ("train", NUM_TRAIN), "validation": ("val", NUM_VAL)}
CATEGORIES = load_quickstart_categories()
K = len(CATEGORIES)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("datasets"))
    result = generate_quickstart(root, num_train=NUM_TRAIN, num_val=NUM_VAL, seed=3, size=SIZE)
    return root, result


def _files(folder):
    return sorted(os.listdir(folder))


def _read(path):
    return np.asarray(Image.open(path))


def _all_outputs(dataset_dir):
    out = []
    for sub in ("images", "annotations", "annotations_detectron2"):
        for split in SPLITS:
            folder = os.path.join(dataset_dir, sub, split)
            out += [os.path.join(sub, split, f) for f in _files(folder)]
    return out


def test_ade_layout_and_file_names(dataset):
    root, result = dataset
    dataset_dir = os.path.join(root, "quickstart_ade")
    assert result["dataset_dir"] == dataset_dir and result["generated"] is True
    assert result["num_classes"] == K and result["categories"] == [c["name"] for c in CATEGORIES]
    assert os.path.isfile(os.path.join(dataset_dir, MANIFEST_NAME))
    for split, (word, count) in SPLITS.items():
        stems = [f"ADE_{word}_{i:08d}" for i in range(1, count + 1)]
        assert _files(os.path.join(dataset_dir, "images", split)) == [s + ".jpg" for s in stems]
        assert _files(os.path.join(dataset_dir, "annotations", split)) == [s + ".png" for s in stems]
        assert _files(os.path.join(dataset_dir, "annotations_detectron2", split)) == [s + ".png" for s in stems]
        info = result["splits"][split]
        assert info["num_images"] == count
        assert result["image_dirs"][split] == info["image_root"]
        assert result["annotation_dirs"][split] == info["sem_seg_root"]
        assert info["image_root"] == os.path.join(dataset_dir, "images", split)
        assert info["sem_seg_root"] == os.path.join(dataset_dir, "annotations_detectron2", split)
        assert info["raw_annotation_root"] == os.path.join(dataset_dir, "annotations", split)
        for name in stems:
            assert re.fullmatch(r"ADE_(train|val)_\d{8}", name)


def test_image_and_label_sizes_and_values(dataset):
    root, result = dataset
    for split in SPLITS:
        info = result["splits"][split]
        for f in _files(info["image_root"]):
            stem = f[: -len(".jpg")]
            with Image.open(os.path.join(info["image_root"], f)) as image:
                assert image.format == "JPEG" and image.mode == "RGB"
                width, height = image.size
            with Image.open(os.path.join(info["sem_seg_root"], stem + ".png")) as label:
                assert label.format == "PNG" and label.mode == "L"
                assert label.size == (width, height)
                values = set(np.unique(np.asarray(label)).tolist())
            assert max(width, height) == SIZE
            assert min(width, height) >= math.floor(SceneParams().min_aspect * SIZE)
            assert values <= set(range(K)) | {255}


def test_raw_annotations_are_detectron2_labels_plus_one(dataset):
    root, result = dataset
    for split in SPLITS:
        info = result["splits"][split]
        for f in _files(info["sem_seg_root"]):
            label = _read(os.path.join(info["sem_seg_root"], f)).astype(np.int32)
            raw = _read(os.path.join(info["raw_annotation_root"], f)).astype(np.int32)
            assert raw.shape == label.shape
            np.testing.assert_array_equal(raw == 0, label == 255)
            np.testing.assert_array_equal(raw[label != 255], label[label != 255] + 1)


def test_same_seed_same_bytes_other_seed_other_images(dataset, tmp_path):
    root, _ = dataset
    first = os.path.join(root, "quickstart_ade")
    same = generate_quickstart(str(tmp_path / "same"), num_train=NUM_TRAIN, num_val=NUM_VAL, seed=3, size=SIZE)
    other = generate_quickstart(str(tmp_path / "other"), num_train=NUM_TRAIN, num_val=NUM_VAL, seed=4, size=SIZE)
    names = _all_outputs(first)
    assert names == _all_outputs(same["dataset_dir"]) == _all_outputs(other["dataset_dir"])
    for name in names:
        assert filecmp.cmp(os.path.join(first, name), os.path.join(same["dataset_dir"], name), shallow=False), name
    images = [n for n in names if n.endswith(".jpg")]
    differ = [
        not filecmp.cmp(os.path.join(first, n), os.path.join(other["dataset_dir"], n), shallow=False) for n in images
    ]
    assert all(differ)


def test_each_split_has_stuff_and_things_and_all_classes_occur(dataset):
    _, result = dataset
    is_thing = {c["name"]: bool(c["isthing"]) for c in CATEGORIES}
    for split in SPLITS:
        present = [n for n, pixels in result["splits"][split]["class_pixels"].items() if pixels > 0]
        assert len(present) >= 4, (split, present)
        assert any(is_thing[n] for n in present) and not all(is_thing[n] for n in present)
    seen = set()
    for record in iter_scenes("training", 24, seed=0, params=SceneParams(size=64)):
        seen |= {s.category_id for s in record.segments}
    assert seen == set(range(K))


def _class_mean_colours():
    rng = np.random.default_rng(0)
    return np.stack(
        [
            np.mean([render_texture(style_for(c).texture, 32, 32, rng).reshape(-1, 3).mean(0) for _ in range(8)], 0)
            for c in CATEGORIES
        ]
    )


def test_thing_masks_are_exact(dataset):
    root, result = dataset
    thing_ids = [c["id"] for c in CATEGORIES if c["isthing"]]
    means = _class_mean_colours()
    border = {"inside": [0, 0], "outside": [0, 0]}  # [pixels showing the thing's colour, pixels]
    for split in SPLITS:
        info = result["splits"][split]
        scenes = iter_scenes(split, info["num_images"], seed=3, params=SceneParams(size=SIZE))
        for record, f in zip(scenes, _files(info["sem_seg_root"])):
            # the in-memory record is what was written
            label = _read(os.path.join(info["sem_seg_root"], f))
            np.testing.assert_array_equal(record.sem_seg(), label)
            image = _read(os.path.join(info["image_root"], f.replace(".png", ".jpg"))).astype(np.float32)
            assert np.abs(image - record.image).mean() < 6  # only JPEG loss

            things = [s for s in record.segments if s.isthing]
            assert len(things) <= len(record.objects)
            masks = [obj.mask for obj in record.objects]
            any_thing = np.any(masks, axis=0)
            nearest_class = np.argmin(((record.image[:, :, None, :] - means) ** 2).sum(-1), axis=-1)
            for k, obj in enumerate(record.objects):
                # the pasted mask is the object's geometry
                redrawn = shape_mask(
                    obj.shape, record.height, record.width, obj.center, obj.diameter, obj.angle, obj.aspect
                )
                np.testing.assert_array_equal(redrawn, obj.mask)
                # visible pixels = where it was pasted minus what later things cover
                later = np.any(masks[k + 1:], axis=0) if k + 1 < len(masks) else np.zeros_like(obj.mask)
                visible = obj.mask & ~later
                match = [s for s in things if np.array_equal(s.mask, visible)]
                assert len(match) == (1 if visible.any() else 0)
                if match:
                    assert match[0].category_id == obj.category_id
                # the painted pixels follow the mask: its inner border shows the class colour,
                # the pixels just outside it do not (a 1-pixel offset fails both)
                inside = visible & ~ndimage.binary_erosion(obj.mask)
                outside = ndimage.binary_dilation(obj.mask) & ~any_thing
                for key, ring in (("inside", inside), ("outside", outside)):
                    border[key][0] += int((nearest_class[ring] == obj.category_id).sum())
                    border[key][1] += int(ring.sum())
            # label pixels of each thing class lie exactly on that class's visible pasted pixels
            for c in thing_ids:
                union = np.zeros(label.shape, bool)
                for s in things:
                    if s.category_id == c:
                        union |= s.mask
                np.testing.assert_array_equal(label == c, union)
    assert border["inside"][1] > 200 and border["outside"][1] > 200
    assert border["inside"][0] / border["inside"][1] > 0.7, border
    assert border["outside"][0] / border["outside"][1] < 0.15, border


def test_segments_partition_the_labelled_pixels():
    (record,) = iter_scenes("validation", 1, seed=11, params=SceneParams(size=96))
    coverage = np.zeros((record.height, record.width), np.int32)
    for s in record.segments:
        assert s.area > 0 and s.mask.shape == coverage.shape
        x, y, w, h = s.bbox
        ys, xs = np.nonzero(s.mask)
        assert (x, y, w, h) == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
        coverage += s.mask
    assert coverage.max() == 1
    np.testing.assert_array_equal(coverage == 1, record.sem_seg() != 255)
    assert [s.id for s in record.segments] == list(range(1, len(record.segments) + 1))


def test_complete_output_is_reused_and_partial_output_regenerated(tmp_path):
    root = str(tmp_path)
    kwargs = dict(num_train=2, num_val=1, seed=0, size=64)
    first = generate_quickstart(root, **kwargs)
    dataset_dir = first["dataset_dir"]
    image = os.path.join(first["splits"]["training"]["image_root"], "ADE_train_00000001.jpg")
    stale = os.path.join(first["splits"]["training"]["image_root"], "ADE_train_00000099.jpg")
    original = open(image, "rb").read()

    # complete and matching: kept as is
    with open(image, "ab") as f:
        f.write(b"marker")
    again = generate_quickstart(root, **kwargs)
    assert again["generated"] is False and open(image, "rb").read() == original + b"marker"

    # interrupted run: no completion marker -> regenerated, stale files removed
    os.remove(os.path.join(dataset_dir, MANIFEST_NAME))
    open(stale, "wb").close()
    redone = generate_quickstart(root, **kwargs)
    assert redone["generated"] is True
    assert open(image, "rb").read() == original and not os.path.exists(stale)
    assert os.path.isfile(os.path.join(dataset_dir, MANIFEST_NAME))

    # a missing file, other arguments, or overwrite=True also regenerate
    os.remove(image)
    assert generate_quickstart(root, **kwargs)["generated"] is True and os.path.isfile(image)
    assert generate_quickstart(root, **dict(kwargs, num_train=3))["generated"] is True
    assert len(os.listdir(first["splits"]["training"]["image_root"])) == 3
    assert generate_quickstart(root, **dict(kwargs, num_train=3), overwrite=True)["generated"] is True


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="num_train"):
        generate_quickstart(str(tmp_path), num_train=-1)
    with pytest.raises(ValueError, match="size"):
        generate_quickstart(str(tmp_path), num_train=1, num_val=1, size=8)


def test_command_line(tmp_path, capsys):
    argv = ["--root", str(tmp_path), "--num-train", "2", "--num-val", "1", "--size", "64", "--seed", "5"]
    assert generate_main(argv) == 0
    out = capsys.readouterr().out
    assert "Wrote" in out and os.path.join(str(tmp_path), "quickstart_ade", "images", "training") in out
    assert len(os.listdir(tmp_path / "quickstart_ade" / "annotations_detectron2" / "validation")) == 1
    assert generate_main(argv) == 0
    assert "not regenerated" in capsys.readouterr().out
    assert generate_main(argv[:2] + ["--num-train", "-3"]) == 2
    assert "num_train" in capsys.readouterr().err


def test_category_table_and_styles_agree():
    assert [c["id"] for c in CATEGORIES] == list(range(K))
    assert {c["name"] for c in CATEGORIES} == set(CLASS_STYLES)
    assert 0 < sum(c["isthing"] for c in CATEGORIES) < K
    assert {style_for(c).shape for c in CATEGORIES if c["isthing"]} <= set(SHAPES)


def test_classes_have_distinct_mean_colours():
    means = _class_mean_colours()
    for a, b in itertools.combinations(range(K), 2):
        names = (CATEGORIES[a]["name"], CATEGORIES[b]["name"])
        assert np.linalg.norm(means[a] - means[b]) > 50, (names, means[a], means[b])


def test_shapes_have_equal_area_and_exact_geometry():
    diameter, size = 40.0, 64
    areas = {k: shape_mask(k, size, size, (32, 32), diameter).sum() for k in SHAPES}
    for kind, area in areas.items():
        assert abs(area - math.pi * diameter ** 2 / 4) < 0.04 * area, (kind, area)
    disc = shape_mask("disc", size, size, (32.0, 32.0), diameter)
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    inside = (xs - 32) ** 2 + (ys - 32) ** 2 < (diameter / 2 - 1) ** 2
    outside = (xs - 32) ** 2 + (ys - 32) ** 2 > (diameter / 2 + 1) ** 2
    assert disc[inside].all() and not disc[outside].any()
    ring = shape_mask("ring", size, size, (32.0, 32.0), diameter)
    assert not ring[32, 32] and ring[32, 32 + int(diameter * 0.4)]
    # a shape partly outside the image is cut off, not wrapped
    cut = shape_mask("square", size, size, (0.0, 32.0), diameter)
    assert cut[:, :8].any() and not cut[:, size // 2:].any()


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layouts_cover_the_image_with_the_requested_regions(name):
    regions = LAYOUTS[name](50, 70, 4, np.random.default_rng(1))
    assert regions.shape == (50, 70) and regions.dtype == np.int32
    assert regions.min() >= 0 and regions.max() < 4 and len(np.unique(regions)) >= 2
