"""``generate_quickstart_videos``: write the quickstart video set in the YouTube-VIS layout.

Files under ``<root>/quickstart_ytvis/`` (the layout of ``ytvis_2019/``; registered as
``quickstart_ytvis_train`` / ``quickstart_ytvis_val`` by :mod:`segcore.data.datasets.quickstart`)::

    {train,valid}/JPEGImages/video_%04d/%05d.jpg   the frames
    {train,valid}.json                              YouTube-VIS json: videos, annotations (one per
                                                    track: per-frame RLE segmentations, bboxes,
                                                    areas, null where absent), categories
    quickstart_ytvis_manifest.json                  written last (completion marker)

Category ids are 1..K in the order of the quickstart table's things (YouTube-VIS ids start at 1).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from typing import Dict, Iterator, Optional, Sequence

import numpy as np
from PIL import Image

from segcore.data.datasets.quickstart import (QUICKSTART_TABLE, QUICKSTART_YTVIS_SPLITS, load_quickstart_categories,
                                              quickstart_video_dataset_dir)

from .video import VideoParams, VideoRecord, render_video
from .writers import JPEG_QUALITY, JPEG_SUBSAMPLING

__all__ = ["VIDEO_MANIFEST_NAME", "YTVISWriter", "generate_quickstart_videos", "iter_videos", "video_rng"]

logger = logging.getLogger(__name__)

#: completion marker, written last
VIDEO_MANIFEST_NAME = "quickstart_ytvis_manifest.json"
#: bumped whenever the same parameters would produce different files
VIDEO_GENERATOR_VERSION = 1
_SPLITS = tuple(QUICKSTART_YTVIS_SPLITS.values())  # ("train", "valid")
#: a separate stream from the image generator's (its split codes are 0 and 1)
_SPLIT_CODES = {"train": 10, "valid": 11}


def video_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random generator of one video, independent of every other video.

    Raises:
        KeyError: a split other than "train" / "valid".
    """
    if split not in _SPLIT_CODES:
        raise KeyError(f"unknown video split {split!r}; expected one of {sorted(_SPLIT_CODES)}")
    return np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_CODES[split], index]))


def iter_videos(split: str, num_videos: int, seed: int = 0, params: Optional[VideoParams] = None,
                categories: Optional[Sequence[dict]] = None) -> Iterator[VideoRecord]:
    """The videos of one split in memory (what :func:`generate_quickstart_videos` writes)."""
    params = params or VideoParams()
    categories = list(categories) if categories is not None else load_quickstart_categories()
    for index in range(1, num_videos + 1):
        yield render_video(categories, params, video_rng(seed, split, index), split, index)


class YTVISWriter:
    """Writes :class:`~segcore.quickstart.video.VideoRecord` s in the YouTube-VIS layout (module docstring).

    Args:
        dataset_dir: ``<root>/quickstart_ytvis``.
        categories: the quickstart table; its things are the video set's categories (ids 1..K).
    """

    def __init__(self, dataset_dir: str, categories: Sequence[dict]):
        self.dataset_dir = dataset_dir
        things = [c for c in categories if c["isthing"]]
        self.category_ids = {c["id"]: i + 1 for i, c in enumerate(things)}
        self._json: Dict[str, dict] = {
            split: {"info": {"description": "segcore quickstart videos (YouTube-VIS format)"},
                    "videos": [], "annotations": [],
                    "categories": [{"id": i + 1, "name": c["name"], "supercategory": "object"}
                                   for i, c in enumerate(things)]}
            for split in _SPLITS}

    def image_root(self, split: str) -> str:
        """The folder of a split's video folders."""
        return os.path.join(self.dataset_dir, split, "JPEGImages")

    def json_file(self, split: str) -> str:
        """The YouTube-VIS json of a split."""
        return os.path.join(self.dataset_dir, f"{split}.json")

    def write(self, record: VideoRecord) -> None:
        """Write the frames of ``record`` and remember its json entries."""
        from pycocotools import mask as mask_util

        content = self._json[record.split]
        folder = os.path.join(self.image_root(record.split), record.name)
        os.makedirs(folder, exist_ok=True)
        file_names = []
        for t, frame in enumerate(record.frames):
            name = f"{record.name}/{t:05d}.jpg"
            Image.fromarray(frame).save(os.path.join(self.image_root(record.split), name), format="JPEG",
                                        quality=JPEG_QUALITY, subsampling=JPEG_SUBSAMPLING)
            file_names.append(name)
        video_id = len(content["videos"]) + 1
        content["videos"].append({"id": video_id, "width": record.width, "height": record.height,
                                  "length": len(record.frames), "file_names": file_names})
        for track in record.tracks:
            segmentations, bboxes, areas = [], [], []
            for mask in track.masks:
                if mask is None:
                    segmentations.append(None)
                    bboxes.append(None)
                    areas.append(None)
                    continue
                rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
                rle["counts"] = rle["counts"].decode("ascii")
                segmentations.append(rle)
                bboxes.append([float(v) for v in mask_util.toBbox(rle)])
                areas.append(int(mask.sum()))
            content["annotations"].append({
                "id": len(content["annotations"]) + 1, "video_id": video_id,
                "category_id": self.category_ids[track.category_id], "iscrowd": 0,
                "width": record.width, "height": record.height, "length": 1,
                "segmentations": segmentations, "bboxes": bboxes, "areas": areas})

    def close(self) -> None:
        """Write the json of every split."""
        for split, content in self._json.items():
            os.makedirs(self.dataset_dir, exist_ok=True)
            with open(self.json_file(split), "w", encoding="utf-8") as f:
                json.dump(content, f)

    def summary(self) -> Dict[str, dict]:
        """Per split: the image folder, json, number of videos, frames and tracks."""
        return {split: {"image_root": self.image_root(split), "json_file": self.json_file(split),
                        "num_videos": len(c["videos"]), "num_frames": sum(v["length"] for v in c["videos"]),
                        "num_tracks": len(c["annotations"])}
                for split, c in self._json.items()}


def _complete_manifest(dataset_dir: str, request: dict) -> Optional[dict]:
    path = os.path.join(dataset_dir, VIDEO_MANIFEST_NAME)
    try:
        with open(path, "r", encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    if manifest.get("request") != request:
        logger.info("Quickstart videos in %s were made with %s; regenerating for %s", dataset_dir,
                    manifest.get("request"), request)
        return None
    for split in _SPLITS:
        if not os.path.isfile(os.path.join(dataset_dir, f"{split}.json")):
            return None
    return manifest


def _result(dataset_dir: str, manifest: dict, generated: bool) -> dict:
    splits = {split: {**info, "image_root": os.path.join(dataset_dir, info["image_root"]),
                      "json_file": os.path.join(dataset_dir, info["json_file"])}
              for split, info in manifest["splits"].items()}
    return {"dataset_dir": dataset_dir, "manifest": os.path.join(dataset_dir, VIDEO_MANIFEST_NAME),
            "generated": generated, **manifest["request"], "splits": splits}


def generate_quickstart_videos(root: str, num_train: int = 60, num_val: int = 12, num_frames: int = 5, seed: int = 0,
                               size: int = 128, overwrite: bool = False) -> dict:
    """Write the quickstart video set under ``<root>/quickstart_ytvis`` (module docstring).

    Every video: a still background of bundled photographs and stuff textures, 2 to 4 things of the
    quickstart classes moving, scaling, turning and occluding each other (:mod:`.video`). The output
    is a pure function of the arguments and the installed libraries; a complete folder made with the
    same arguments is reused unless ``overwrite``.

    Args:
        root: datasets root (as ``$DETECTRON2_DATASETS``).
        num_train, num_val: videos per split (>= 0). num_frames: frames per video (>= 1).
        seed: dataset seed (>= 0). size: longer frame side (>= 32).
        overwrite: regenerate even when a complete matching set exists.

    Returns:
        ``{"dataset_dir", "manifest", "generated", <the request: num_train, num_val, num_frames, seed,
        size, version, categories>, "splits": {"train" / "valid": {"image_root", "json_file",
        "num_videos", "num_frames", "num_tracks"}}}``.

    Raises:
        ValueError: negative counts or seed, no frame, a too small size.
    """
    for name, value in (("num_train", num_train), ("num_val", num_val), ("seed", seed)):
        if int(value) != value or value < 0:
            raise ValueError(f"generate_quickstart_videos: {name} must be a non-negative int, got {value!r}")
    params = VideoParams(size=int(size), num_frames=int(num_frames))
    categories = load_quickstart_categories()
    request = {"version": VIDEO_GENERATOR_VERSION, "num_train": int(num_train), "num_val": int(num_val),
               "num_frames": int(num_frames), "seed": int(seed), "size": int(size),
               "categories": [c["name"] for c in categories if c["isthing"]]}
    dataset_dir = quickstart_video_dataset_dir(root)
    manifest_path = os.path.join(dataset_dir, VIDEO_MANIFEST_NAME)
    if not overwrite:
        manifest = _complete_manifest(dataset_dir, request)
        if manifest is not None:
            logger.info("Quickstart videos in %s are complete; not regenerating", dataset_dir)
            return _result(dataset_dir, manifest, generated=False)
    if os.path.exists(manifest_path):
        os.remove(manifest_path)
    for split in _SPLITS:  # only what this generator writes
        shutil.rmtree(os.path.join(dataset_dir, split), ignore_errors=True)
    os.makedirs(dataset_dir, exist_ok=True)

    writer = YTVISWriter(dataset_dir, categories)
    for split, count in (("train", request["num_train"]), ("valid", request["num_val"])):
        os.makedirs(writer.image_root(split), exist_ok=True)
        for record in iter_videos(split, count, request["seed"], params, categories):
            writer.write(record)
    writer.close()
    splits: Dict[str, dict] = {}
    for split, info in writer.summary().items():
        splits[split] = {**info, "image_root": os.path.relpath(info["image_root"], dataset_dir),
                         "json_file": os.path.relpath(info["json_file"], dataset_dir)}
    manifest = {"description": "segcore quickstart videos (YouTube-VIS layout)",
                "categories_file": f"segcore/data/categories/{QUICKSTART_TABLE}.json",
                "request": request, "splits": splits}
    tmp_path = manifest_path + ".tmp"
    with open(tmp_path, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
    os.replace(tmp_path, manifest_path)
    logger.info("Wrote the quickstart videos (%d training, %d validation, %d frames each) to %s", num_train, num_val,
                num_frames, dataset_dir)
    return _result(dataset_dir, manifest, generated=True)

