"""End to end on generated videos in the YouTube-VIS layout: train_net.py trains the original
YouTube-VIS 2019 R50 config (made tiny by overrides) and evaluates it with video AP (results.json in
the server's format); train_net_video.py (the original's entry point) evaluates the checkpoint the
same way; demo_video/demo.py draws the tracks on frames or a video file, whole or windowed."""
import json
import os

import numpy as np
import pytest
import torch

from segcore.utils.video import VideoWriter, iter_frames
from tests.e2e_utils import load_script, read_metrics
from tests.paths import CONFIGS

CONFIG = os.path.join(CONFIGS, "youtubevis_2019", "video_maskformer2_R50_bs16_8ep.yaml")

#: the R50 YouTube-VIS config made tiny (ResNet-18, 32 wide, 8 queries, 64-pixel frames, no weights),
#: on the generated videos
TINY_VIDEO = ["MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu", "MODEL.RESNETS.DEPTH", "18",
              "MODEL.RESNETS.RES2_OUT_CHANNELS", "64", "MODEL.SEM_SEG_HEAD.NUM_CLASSES", "5",
              "MODEL.SEM_SEG_HEAD.CONVS_DIM", "32", "MODEL.SEM_SEG_HEAD.MASK_DIM", "32",
              "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS", "1", "MODEL.MASK_FORMER.HIDDEN_DIM", "32",
              "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", "8", "MODEL.MASK_FORMER.NHEADS", "4",
              "MODEL.MASK_FORMER.DIM_FEEDFORWARD", "64", "MODEL.MASK_FORMER.DEC_LAYERS", "4",
              "MODEL.MASK_FORMER.TRAIN_NUM_POINTS", "64", "INPUT.MIN_SIZE_TRAIN", "(48, 64)",
              "INPUT.MAX_SIZE_TRAIN", "128", "INPUT.MIN_SIZE_TEST", "64", "INPUT.MAX_SIZE_TEST", "128",
              "INPUT.SAMPLING_FRAME_RANGE", "2", "SOLVER.IMS_PER_BATCH", "2", "DATALOADER.NUM_WORKERS", "0",
              "DATASETS.TRAIN", "('quickstart_ytvis_train',)", "DATASETS.TEST", "('quickstart_ytvis_val',)"]


@pytest.fixture(scope="module")
def trained(quickstart_ytvis_registered, tmp_path_factory):
    """(OUTPUT_DIR, results) of a tiny model trained for 2 iterations and evaluated by train_net.py."""
    out = str(tmp_path_factory.mktemp("video_train") / "out")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DETECTRON2_DATASETS", str(quickstart_ytvis_registered))
        train_net = load_script("train_net", "train_net.py")
        results = train_net.cli(["--config-file", CONFIG, "OUTPUT_DIR", out, "SOLVER.MAX_ITER", "2", *TINY_VIDEO])
    return out, results


def test_train_net_trains_and_evaluates_the_original_config(trained):
    out, results = trained
    ap = results["segm"]["AP"]
    assert np.isnan(ap) or 0.0 <= ap <= 100.0
    assert set(results["segm"]) >= {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10"}
    logged = [m for m in read_metrics(out) if "total_loss" in m]
    assert logged and {"loss_ce", "loss_mask", "loss_dice", "loss_ce_0"} <= set(logged[-1])
    with open(os.path.join(out, "inference", "results.json")) as f:
        records = json.load(f)
    assert records and all(set(r) == {"video_id", "score", "category_id", "segmentations"} for r in records)
    assert all(1 <= r["category_id"] <= 5 and len(r["segmentations"]) == 4 for r in records)  # dataset ids, T frames
    state = torch.load(os.path.join(out, "model_final.pth"), weights_only=True)["model"]
    assert "sem_seg_head.predictor.query_feat.weight" in state


def test_train_net_video_is_the_same_command(quickstart_ytvis_registered, tmp_path, monkeypatch, trained):
    out, before = trained
    monkeypatch.setenv("DETECTRON2_DATASETS", str(quickstart_ytvis_registered))
    train_net_video = load_script("train_net_video", "train_net_video.py")
    results = train_net_video.cli(["--config-file", CONFIG, "--eval-only", "OUTPUT_DIR", str(tmp_path / "eval"),
                                   *TINY_VIDEO, "MODEL.WEIGHTS", os.path.join(out, "model_final.pth")])
    ours, before = results["segm"], before["segm"]
    assert ours.keys() == before.keys()
    assert all((np.isnan(a) and np.isnan(b)) or a == pytest.approx(b, abs=1e-6) for a, b in
               ((ours[k], before[k]) for k in ours))


def test_demo_video_draws_frames_and_videos(quickstart_ytvis_registered, tmp_path, trained):
    demo = load_script("demo_video_demo", "demo_video/demo.py")
    video_dir = os.path.join(str(quickstart_ytvis_registered), "quickstart_ytvis", "valid", "JPEGImages", "video_0001")
    opts = ["--opts", *TINY_VIDEO, "MODEL.WEIGHTS", os.path.join(trained[0], "model_final.pth")]
    out = demo.main(["--config-file", CONFIG, "--input", os.path.join(video_dir, "*.jpg"), "--output",
                     str(tmp_path / "frames"), "--save-frames", "--confidence-threshold", "0", *opts])
    assert [os.path.basename(p) for p in out["frames"]] == sorted(os.listdir(video_dir))
    written = list(iter_frames(out["video"]))
    height, width = out["predictions"]["image_size"]
    # (mp4v keeps even sizes: a 49-row video is decoded with 48 rows)
    assert len(written) == 4 and written[0].shape[1] == width and height - 1 <= written[0].shape[0] <= height
    assert len(out["predictions"]["pred_masks"]) == 10  # the top 10 (query, class) pairs of 8 x 5

    frames = [f for f in iter_frames(os.path.join(tmp_path / "frames", "visualization.mp4"))]
    with VideoWriter(str(tmp_path / "clip.mp4"), 5.0, (frames[0].shape[1], frames[0].shape[0])) as writer:
        for f in frames:
            writer.write(f)
    out = demo.main(["--config-file", CONFIG, "--video-input", str(tmp_path / "clip.mp4"), "--output",
                     str(tmp_path / "windowed"), "--window", "3", "--overlap", "1", *opts])
    assert out["frames"] == [] and len(list(iter_frames(out["video"]))) == 4
    assert all(tuple(m.shape) == (4, *frames[0].shape[:2]) for m in out["predictions"]["pred_masks"])


def test_demo_video_command_line_errors(tmp_path):
    demo = load_script("demo_video_demo", "demo_video/demo.py")
    with pytest.raises(SystemExit):
        demo.main(["--output", str(tmp_path)])  # neither --input nor --video-input
    with pytest.raises(SystemExit):
        demo.main(["--input", str(tmp_path / "none*.jpg"), "--output", str(tmp_path)])
    with pytest.raises(SystemExit):
        demo.main(["--video-input", "clip.mp4", "--output", str(tmp_path), "--window", "3", "--overlap", "3"])
