"""The quickstart video set: YouTube-VIS layout, exact masks, things of several classes that move,
scale and occlude each other, reproducible, readable by the YouTube-VIS loader."""
import json
import os

import numpy as np
import pycocotools.mask as mask_util
import pytest

from segcore.data.datasets.ytvis import load_ytvis_json
from segcore.quickstart import generate
from segcore.quickstart.video import VideoParams
from segcore.quickstart.video_dataset import generate_quickstart_videos, iter_videos


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    info = generate_quickstart_videos(str(root), num_train=3, num_val=2, num_frames=5, size=64)
    return root, info


def test_the_youtube_vis_layout_and_json(videos):
    root, info = videos
    assert info["generated"] and set(info["splits"]) == {"train", "valid"}
    for split, count in (("train", 3), ("valid", 2)):
        with open(os.path.join(root, "quickstart_ytvis", f"{split}.json")) as f:
            data = json.load(f)
        assert [v["id"] for v in data["videos"]] == list(range(1, count + 1))
        assert [c["id"] for c in data["categories"]] == [1, 2, 3, 4, 5]
        for v in data["videos"]:
            assert v["length"] == len(v["file_names"]) == 5
            for name in v["file_names"]:
                assert os.path.isfile(os.path.join(root, "quickstart_ytvis", split, "JPEGImages", name))
        for a in data["annotations"]:
            assert len(a["segmentations"]) == len(a["bboxes"]) == len(a["areas"]) == 5
            for segm, box, area in zip(a["segmentations"], a["bboxes"], a["areas"]):
                assert (segm is None) == (box is None) == (area is None)
                if segm is not None:
                    assert mask_util.area(segm) == area > 0
                    assert list(mask_util.toBbox(segm)) == box
        records = load_ytvis_json(info["splits"][split]["json_file"], info["splits"][split]["image_root"])
        assert len(records) == count and all(len(r["annotations"]) == 5 for r in records)


def test_masks_are_the_exact_visible_pixels_and_the_same_arguments_give_the_same_files(videos, tmp_path):
    root, _ = videos
    with open(os.path.join(root, "quickstart_ytvis", "train.json")) as f:
        data = json.load(f)
    records = list(iter_videos("train", 3, 0, VideoParams(size=64, num_frames=5)))
    anns = iter(data["annotations"])
    for record in records:
        for track in record.tracks:
            ann = next(anns)
            for mask, segm in zip(track.masks, ann["segmentations"]):
                assert (mask is None and segm is None) or np.array_equal(mask_util.decode(segm).astype(bool), mask)
        # visible masks of one frame never overlap
        for t in range(5):
            stack = [tr.masks[t] for tr in record.tracks if tr.masks[t] is not None]
            assert not stack or np.sum(stack, axis=0).max() == 1
    again = generate_quickstart_videos(str(tmp_path), num_train=3, num_val=2, num_frames=5, size=64)
    with open(again["splits"]["train"]["json_file"]) as f:
        assert json.load(f) == data


def test_things_of_several_classes_move_scale_and_occlude():
    records = list(iter_videos("train", 10, 0, VideoParams(size=64, num_frames=5)))
    classes = {tr.category_id for r in records for tr in r.tracks}
    assert len(classes) >= 4
    moved = occluded = vanished = 0
    for r in records:
        for tr in r.tracks:
            present = [m for m in tr.masks if m is not None]
            centres = [np.argwhere(m).mean(0) for m in present]
            moved += np.abs(centres[-1] - centres[0]).max() > 2
            areas = [int(m.sum()) for m in present]
            occluded += max(areas) > 1.5 * min(areas)
            vanished += len(present) < len(tr.masks)
    assert moved >= 8 and occluded >= 3
    assert all(1 <= len(r.tracks) <= 4 for r in records)


def test_the_command_line_writes_the_videos_with_videos(tmp_path, capsys):
    status = generate.main(["--root", str(tmp_path), "--num-train", "1", "--num-val", "1", "--size", "48", "--videos",
                            "--num-train-videos", "1", "--num-val-videos", "1"])
    assert status == 0
    assert os.path.isfile(tmp_path / "quickstart_ytvis" / "valid.json")
    assert "quickstart_ytvis_train" in capsys.readouterr().out
