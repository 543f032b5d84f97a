"""``generate_quickstart``: write the quickstart dataset under a datasets root."""
from __future__ import annotations

import json
import logging
import os
import shutil
from typing import Dict, Iterator, Optional, Sequence

import numpy as np

from segcore.data.datasets.quickstart import QUICKSTART_TABLE, load_quickstart_categories, quickstart_dataset_dir

from .scene import SceneParams, SceneRecord, render_scene
from .writers import ADE_SPLITS, ADESemSegWriter, COCOPanopticWriter, ade_file_stem

__all__ = [
    "MANIFEST_NAME",
    "GENERATOR_VERSION",
    "scene_rng",
    "iter_scenes",
    "generate_quickstart",
]

logger = logging.getLogger(__name__)

# Completion marker, written last: its absence means the folder is partial (e.g. interrupted).
MANIFEST_NAME = "quickstart_manifest.json"
# Bumped whenever the same parameters would produce different files.
GENERATOR_VERSION = 2
_SPLIT_CODES = {"training": 0, "validation": 1}
_OUTPUT_FOLDERS = ("images", "annotations", "annotations_detectron2", "quickstart_panoptic_train",
                   "quickstart_panoptic_val")


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random generator of one image: independent of every other image (so the validation
    split does not change with the number of training images).

    Args:
        seed: dataset seed (non-negative int).
        split: "training" or "validation".
        index: 1-based image number.
    """
    if split not in _SPLIT_CODES:
        raise KeyError(f"unknown split {split!r}; expected one of {sorted(_SPLIT_CODES)}")
    return np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_CODES[split], index]))


def iter_scenes(
    split: str,
    num_images: int,
    seed: int = 0,
    params: Optional[SceneParams] = None,
    categories: Optional[Sequence[dict]] = None,
) -> Iterator[SceneRecord]:
    """Generate the records of one split in memory (nothing is written).

    Yields:
        :class:`SceneRecord` for indices 1..num_images, identical to the ones
        :func:`generate_quickstart` writes for the same ``seed`` and ``size``.
    """
    params = params or SceneParams()
    categories = list(categories) if categories is not None else load_quickstart_categories()
    for index in range(1, num_images + 1):
        yield render_scene(categories, params, scene_rng(seed, split, index), split, index)


def _expected_files(dataset_dir: str, counts: Dict[str, int]) -> Iterator[str]:
    for split, count in counts.items():
        for index in range(1, count + 1):
            stem = ade_file_stem(split, index)
            yield os.path.join(dataset_dir, "images", split, stem + ".jpg")
            yield os.path.join(dataset_dir, "annotations", split, stem + ".png")
            yield os.path.join(dataset_dir, "annotations_detectron2", split, stem + ".png")
            yield os.path.join(dataset_dir, f"quickstart_panoptic_{ADE_SPLITS[split]}", stem + ".png")
        yield os.path.join(dataset_dir, f"quickstart_panoptic_{ADE_SPLITS[split]}.json")
        yield os.path.join(dataset_dir, f"quickstart_instance_{ADE_SPLITS[split]}.json")


def _read_complete_manifest(dataset_dir: str, request: dict) -> Optional[dict]:
    """The manifest if the folder holds a complete dataset made with ``request``, else None."""
    path = os.path.join(dataset_dir, MANIFEST_NAME)
    if not os.path.isfile(path):
        if any(os.path.isdir(os.path.join(dataset_dir, folder)) for folder in _OUTPUT_FOLDERS):
            logger.info("Quickstart data in %s has no completion marker %s (interrupted?); "
                        "regenerating", dataset_dir, MANIFEST_NAME)
        return None
    try:
        with open(path, "r", encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        logger.warning("Ignoring unreadable quickstart manifest %s (%s)", path, e)
        return None
    if manifest.get("request") != request:
        logger.info("Quickstart data in %s was made with %s; regenerating for %s",
                    dataset_dir, manifest.get("request"), request)
        return None
    counts = {"training": request["num_train"], "validation": request["num_val"]}
    missing = next((p for p in _expected_files(dataset_dir, counts) if not os.path.isfile(p)), None)
    if missing is not None:
        logger.warning("Quickstart data in %s lacks %s; regenerating", dataset_dir, missing)
        return None
    return manifest


def _result(dataset_dir: str, manifest: dict, generated: bool) -> dict:
    splits = {}
    for split, info in manifest["splits"].items():
        info = dict(info)
        for key in ("image_root", "sem_seg_root", "raw_annotation_root"):
            info[key] = os.path.join(dataset_dir, info[key])
        splits[split] = info
    return {
        "dataset_dir": dataset_dir,
        "manifest": os.path.join(dataset_dir, MANIFEST_NAME),
        "generated": generated,
        **manifest["request"],
        "num_classes": len(manifest["request"]["categories"]),
        "splits": splits,
        "image_dirs": {split: info["image_root"] for split, info in splits.items()},
        "annotation_dirs": {split: info["sem_seg_root"] for split, info in splits.items()},
    }


def generate_quickstart(
    root: str,
    num_train: int = 200,
    num_val: int = 50,
    seed: int = 0,
    size: int = 224,
    overwrite: bool = False,
) -> dict:
    """Write the quickstart dataset in the ADE20K semantic layout under ``<root>/quickstart_ade``.

    Real photographs bundled with scikit-image / matplotlib are cut into stuff regions
    (``brick``, ``grass``, ``gravel``, ``sky``, ``space``) and unlabelled background; things
    (``disc``, ``square``, ``triangle``, ``star``, ``ring``) are pasted on top with occlusion and
    about 3x scale variation. Files (see :class:`ADESemSegWriter`)::

        images/{training,validation}/ADE_{train,val}_%08d.jpg
        annotations/{training,validation}/*.png            class id + 1, 0 = unlabelled
        annotations_detectron2/{training,validation}/*.png class id, 255 = unlabelled
        quickstart_panoptic_{train,val}/*.png, quickstart_panoptic_{train,val}.json
                                                           COCO panoptic (the ADE20K panoptic layout)
        quickstart_instance_{train,val}.json               COCO instances of the things (RLE)
        quickstart_manifest.json                           written last (completion marker)

    The output is a pure function of (num_train, num_val, seed, size) and the installed
    libraries: the same arguments give byte-identical files. A folder whose manifest matches the
    request and whose files all exist is reused; anything else (no manifest: an interrupted run;
    other arguments; missing files; ``overwrite=True``) is deleted and regenerated.

    Args:
        root: datasets root (as ``$DETECTRON2_DATASETS``).
        num_train, num_val: number of images per split (>= 0).
        seed: dataset seed (>= 0).
        size: longer image side in pixels (>= 32); the shorter side is 70-100% of it.
        overwrite: regenerate even when a complete matching dataset exists.

    Returns:
        dict with "dataset_dir", "manifest" (path), "generated" (False when reused), the request
        ("num_train", "num_val", "seed", "size", "version", "categories" (names)),
        "num_classes", "splits": {"training"/"validation": {"image_root", "sem_seg_root",
        "raw_annotation_root", "num_images", "class_pixels" (name -> labelled pixel count),
        "unlabelled_pixels"}}, and the shortcuts "image_dirs" / "annotation_dirs"
        ({split: image_root} / {split: sem_seg_root}, the Detectron2 label folders).

    Raises:
        ValueError: for negative counts / seed or a too small size.
    """
    for name, value in (("num_train", num_train), ("num_val", num_val), ("seed", seed)):
        if int(value) != value or value < 0:
            raise ValueError(f"generate_quickstart: {name} must be a non-negative int, got {value!r}")
    params = SceneParams(size=int(size))
    categories = load_quickstart_categories()
    request = {
        "version": GENERATOR_VERSION,
        "num_train": int(num_train),
        "num_val": int(num_val),
        "seed": int(seed),
        "size": int(size),
        "categories": [c["name"] for c in categories],
    }
    dataset_dir = quickstart_dataset_dir(root)
    manifest_path = os.path.join(dataset_dir, MANIFEST_NAME)
    if not overwrite:
        manifest = _read_complete_manifest(dataset_dir, request)
        if manifest is not None:
            logger.info("Quickstart dataset in %s is complete; not regenerating", dataset_dir)
            return _result(dataset_dir, manifest, generated=False)

    # remove the marker first: an interruption from here on leaves a folder seen as partial
    if os.path.exists(manifest_path):
        os.remove(manifest_path)
    for folder in _OUTPUT_FOLDERS:  # only the folders this generator writes
        folder = os.path.join(dataset_dir, folder)
        if os.path.isdir(folder):
            shutil.rmtree(folder)
    os.makedirs(dataset_dir, exist_ok=True)

    writer = ADESemSegWriter(dataset_dir)
    panoptic_writer = COCOPanopticWriter(dataset_dir, categories)
    counts = {"training": request["num_train"], "validation": request["num_val"]}
    for split, count in counts.items():
        for folder in (writer.image_root, writer.raw_annotation_root, writer.sem_seg_root):
            os.makedirs(folder(split), exist_ok=True)
        for record in iter_scenes(split, count, request["seed"], params, categories):
            writer.write(record)
            panoptic_writer.write(record)
    writer.close()
    panoptic_writer.close()

    names = [c["name"] for c in categories]
    summary = writer.summary(names)
    splits = {}
    for split in ADE_SPLITS:
        info = summary.get(split) or {
            "image_root": writer.image_root(split),
            "sem_seg_root": writer.sem_seg_root(split),
            "raw_annotation_root": writer.raw_annotation_root(split),
            "num_images": 0,
            "class_pixels": {name: 0 for name in names},
            "unlabelled_pixels": 0,
        }
        for key in ("image_root", "sem_seg_root", "raw_annotation_root"):
            info[key] = os.path.relpath(info[key], dataset_dir)
        splits[split] = info
    manifest = {
        "description": "segcore quickstart dataset (ADE20K semantic layout)",
        "categories_file": f"segcore/data/categories/{QUICKSTART_TABLE}.json",
        "request": request,
        "splits": splits,
    }
    tmp_path = manifest_path + ".tmp"
    with open(tmp_path, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
    os.replace(tmp_path, manifest_path)
    logger.info("Wrote the quickstart dataset (%d training, %d validation images) to %s",
                num_train, num_val, dataset_dir)
    return _result(dataset_dir, manifest, generated=True)
