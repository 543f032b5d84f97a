"""The clip mapper (YTVISDatasetMapper) and the clip augmentations, against the original's rules
(facebookresearch/Mask2Former 9b0651c, mask2former_video/data_video/{dataset_mapper,augmentation}.py):
T frames within SAMPLING_FRAME_RANGE of a reference frame, sorted; one size (choice_by_clip) and one
flip (flip_by_clip) per clip; per frame the clip's tracks in one order, by id, a track absent from
a frame kept as an empty mask with id -1 and the "no object" class."""
import os
import random

import numpy as np
import pytest
import torch
from PIL import Image

import mask2former_video.data.ytvis_dataset_mapper as mapper_module
from mask2former_video import VideoMaskFormer
from mask2former_video.data import YTVISDatasetMapper, build_clip_augmentations, sample_clip_frames
from segcore.data import DatasetCatalog
from segcore.data.transforms import AugInput
from segcore.engine import setup_cfg
from segcore.modeling import build_model
from segcore.structures import ImageList
from tests.paths import CONFIGS

CONFIG = os.path.join(CONFIGS, "quickstart", "video_maskformer2_R18_quickstart.yaml")


def _cfg(*opts):
    return setup_cfg(CONFIG, ["MODEL.DEVICE", "cpu", *opts])


def _near_reference(selected, frame_range):
    """Whether some selected frame (the reference) has every other within ``frame_range`` of it."""
    return any(all(abs(s - r) <= frame_range for s in selected) for r in selected)


@pytest.mark.parametrize("length,num,frame_range", [(30, 3, 4), (6, 2, 20), (2, 5, 1), (1, 3, 5)])
def test_sampled_frames_lie_within_the_range_of_a_reference_frame(length, num, frame_range):
    random.seed(0)
    np.random.seed(0)
    seen = set()
    for _ in range(200):
        selected = sample_clip_frames(length, num, frame_range)
        assert len(selected) == num and selected == sorted(selected)
        assert all(0 <= s < length for s in selected)
        assert _near_reference(selected, frame_range)
        seen.update(selected)
    assert seen == set(range(length))  # every frame can be drawn


def test_shuffled_clips_hold_the_same_frames_in_any_order():
    random.seed(1)
    np.random.seed(1)
    orders = set()
    for _ in range(50):
        selected = sample_clip_frames(40, 4, 10, shuffle=True)
        assert _near_reference(selected, 10)
        orders.add(selected == sorted(selected))
    assert orders == {True, False}


def test_bad_clip_requests_are_errors():
    with pytest.raises(ValueError):
        sample_clip_frames(0, 2, 5)
    with pytest.raises(ValueError):
        sample_clip_frames(5, 0, 5)


def _asymmetric_frames(t, h=48, w=64):
    """Frames dark on the left, bright on the right (a flip is visible), each a different shade."""
    frames = []
    for k in range(t):
        f = np.zeros((h, w, 3), np.uint8)
        f[:, w // 2:] = 200 + k
        frames.append(f)
    return frames


def _augment_clip(augs, frames):
    apply = augs.new_clip()
    out = []
    for f in frames:
        aug_input = AugInput(f.copy())
        apply(aug_input)
        out.append(aug_input.image)
    return out


def test_choice_by_clip_and_flip_by_clip_draw_once_per_clip():
    cfg = _cfg("INPUT.MIN_SIZE_TRAIN", "(32, 48, 64)", "INPUT.MAX_SIZE_TRAIN", "1000")
    augs = build_clip_augmentations(cfg, is_train=True)
    np.random.seed(0)
    random.seed(0)
    sizes, flips = set(), set()
    for _ in range(30):
        out = _augment_clip(augs, _asymmetric_frames(4))
        assert len({o.shape for o in out}) == 1  # one size per clip
        flipped = [o[:, : o.shape[1] // 4].mean() > o[:, -o.shape[1] // 4:].mean() for o in out]
        assert len(set(flipped)) == 1  # one flip per clip
        sizes.add(out[0].shape[0])
        flips.add(flipped[0])
    assert sizes == {32, 48, 64} and flips == {True, False}  # drawn anew for each clip


def test_per_frame_sampling_draws_per_frame():
    cfg = _cfg("INPUT.MIN_SIZE_TRAIN", "(32, 48, 64)", "INPUT.MIN_SIZE_TRAIN_SAMPLING", "choice",
               "INPUT.RANDOM_FLIP", "horizontal", "INPUT.MAX_SIZE_TRAIN", "1000")
    augs = build_clip_augmentations(cfg, is_train=True)
    np.random.seed(0)
    mixed_sizes = mixed_flips = False
    for _ in range(30):
        out = _augment_clip(augs, _asymmetric_frames(4))
        mixed_sizes |= len({o.shape for o in out}) > 1
        mixed_flips |= len({bool(o[:, :8].mean() > o[:, -8:].mean()) for o in out}) > 1
    assert mixed_sizes and mixed_flips


def test_unknown_augmentation_names_are_errors():
    with pytest.raises(ValueError, match="INPUT.AUGMENTATIONS"):
        build_clip_augmentations(_cfg("INPUT.AUGMENTATIONS", "['blur']"), is_train=True)
    augs = build_clip_augmentations(_cfg("INPUT.AUGMENTATIONS", "['rotation', 'brightness']"), is_train=True)
    assert [type(a).__name__ for a in augs.augmentations][-2:] == ["RandomBrightness", "RandomRotation"]


def _rect(h, w, x0, y0, x1, y1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


@pytest.fixture
def hand_made_video(tmp_path):
    """A 4-frame video (48 x 64) with track 9 (class 2) in frames 0, 1, 3 and track 7 (class 0) in
    frames 2, 3, given as polygons, plus a crowd annotation."""
    h, w = 48, 64
    names = []
    for t in range(4):
        path = tmp_path / f"{t:05d}.jpg"
        Image.fromarray(np.full((h, w, 3), 40 * t, np.uint8)).save(path)
        names.append(str(path))

    def anno(track, cls, x0, y0, x1, y1, crowd=0):
        return {"id": track, "category_id": cls, "iscrowd": crowd, "bbox": [x0, y0, x1 - x0, y1 - y0], "bbox_mode": 1,
                "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]]}

    annotations = [[anno(9, 2, 4, 4, 20, 16)], [anno(9, 2, 8, 6, 24, 18)],
                   [anno(7, 0, 30, 20, 50, 40), anno(3, 1, 0, 0, 8, 8, crowd=1)],
                   [anno(9, 2, 12, 8, 28, 20), anno(7, 0, 32, 22, 52, 42)]]
    record = {"file_names": names, "height": h, "width": w, "length": 4, "video_id": 5, "annotations": annotations}
    return record, {9: [(4, 4, 20, 16), (8, 6, 24, 18), None, (12, 8, 28, 20)],
                    7: [None, None, (30, 20, 50, 40), (32, 22, 52, 42)]}


def _identity_mapper(num_frames=4):
    cfg = _cfg("INPUT.MIN_SIZE_TRAIN", "(48,)", "INPUT.MAX_SIZE_TRAIN", "1000", "INPUT.RANDOM_FLIP", "none",
               "INPUT.SAMPLING_FRAME_NUM", str(num_frames))
    return cfg, YTVISDatasetMapper(cfg, is_train=True)


def test_tracks_are_kept_by_id_and_absent_frames_are_empty(hand_made_video, monkeypatch):
    record, boxes = hand_made_video
    monkeypatch.setattr(mapper_module, "sample_clip_frames", lambda *args: [0, 1, 2, 3])
    cfg, mapper = _identity_mapper()
    out = mapper(record)
    assert "annotations" not in out and out["file_names"] == record["file_names"]
    assert len(out["image"]) == len(out["instances"]) == 4
    assert all(img.dtype == torch.uint8 and tuple(img.shape) == (3, 48, 64) for img in out["image"])
    num_classes = cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES
    tracks = [7, 9]  # every non-crowd track of the clip, in one order in every frame
    for t, inst in enumerate(out["instances"]):
        assert len(inst) == 2 and inst.image_size == (48, 64)
        for i, track in enumerate(tracks):
            box = boxes[track][t]
            if box is None:
                assert inst.gt_ids[i] == -1 and inst.gt_classes[i] == num_classes
                assert not inst.gt_masks.tensor[i].any()
            else:
                assert inst.gt_ids[i] == track and inst.gt_classes[i] == {7: 0, 9: 2}[track]
                assert torch.equal(inst.gt_masks.tensor[i], torch.from_numpy(_rect(48, 64, *box)))
    # the model's targets: one tube per track, its class where present (even when absent in the last frame)
    model = build_model(_cfg("INPUT.SAMPLING_FRAME_NUM", "4"))
    images = ImageList.from_tensors([img.float() for img in out["image"]], 32)
    (target,) = VideoMaskFormer.prepare_targets(model, [out], images)
    assert target["labels"].tolist() == [0, 2]
    assert target["ids"].tolist() == [[-1, -1, 7, 7], [9, 9, -1, 9]]
    assert tuple(target["masks"].shape) == (2, 4, 64, 64)
    assert target["masks"][1, 2].sum() == 0 and target["masks"][1, 0].sum() == 16 * 12


def test_a_track_absent_from_the_sampled_frames_is_not_in_the_clip(hand_made_video, monkeypatch):
    record, _ = hand_made_video
    monkeypatch.setattr(mapper_module, "sample_clip_frames", lambda *args: [0, 1])
    _, mapper = _identity_mapper(num_frames=2)
    out = mapper(record)
    assert [inst.gt_ids.tolist() for inst in out["instances"]] == [[9], [9]]


def test_a_frame_without_any_track_keeps_the_clips_tracks_as_empty_masks(hand_made_video, monkeypatch):
    record, _ = hand_made_video
    record["annotations"][1] = []
    monkeypatch.setattr(mapper_module, "sample_clip_frames", lambda *args: [0, 1])
    _, mapper = _identity_mapper(num_frames=2)
    out = mapper(record)
    empty = out["instances"][1]
    assert empty.gt_ids.tolist() == [-1] and not empty.gt_masks.tensor.any()


def test_evaluation_maps_every_frame_without_instances(hand_made_video):
    record, _ = hand_made_video
    cfg = _cfg("INPUT.MIN_SIZE_TEST", "32")
    out = YTVISDatasetMapper(cfg, is_train=False)(record)
    assert len(out["image"]) == 4 and out["instances"] == []
    assert tuple(out["image"][0].shape) == (3, 32, 43) and out["height"] == 48 and out["width"] == 64


def test_generated_videos_load_and_map(quickstart_ytvis_registered):
    records = DatasetCatalog.get("quickstart_ytvis_train")
    assert len(records) == 4 and all(r["length"] == 4 == len(r["annotations"]) for r in records)
    _, mapper = _identity_mapper(num_frames=2)
    np.random.seed(0)
    random.seed(0)
    for r in records:
        out = mapper(r)
        ids = [inst.gt_ids for inst in out["instances"]]
        assert len(ids) == 2 and len(ids[0]) == len(ids[1]) >= 1
        for inst in out["instances"]:  # a present track has a mask, an absent one none
            present = inst.gt_ids != -1
            assert torch.equal(inst.gt_masks.tensor.flatten(1).any(1), present)
