"""tools/quickstart.py: the model x task quickstarts run end to end and summarize their metrics."""
import json
import os

import pytest

from segcore.quickstart import runs
from tests.e2e_utils import load_script

TINY = ["MODEL.SEM_SEG_HEAD.CONVS_DIM", "32", "MODEL.SEM_SEG_HEAD.MASK_DIM", "32", "MODEL.MASK_FORMER.HIDDEN_DIM", "32",
        "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", "8", "MODEL.MASK_FORMER.DIM_FEEDFORWARD", "64",
        "INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.CROP.SIZE", "(64, 64)", "INPUT.SIZE_DIVISIBILITY", "64",
        "INPUT.MIN_SIZE_TEST", "64", "SOLVER.IMS_PER_BATCH", "2", "DATALOADER.NUM_WORKERS", "0",
        "SOLVER.MAX_ITER", "2", "MODEL.DEVICE", "cpu"]


@pytest.fixture
def quickstart(quickstart_root, monkeypatch):
    """tools/quickstart.py on the small shared dataset (its default generation is much larger)."""
    real = runs.generate_quickstart
    monkeypatch.setattr(runs, "generate_quickstart", lambda root: real(root, num_train=6, num_val=3, size=80))
    return load_script("quickstart_cli", "tools/quickstart.py")


def test_mask2former_instance_quickstart_reports_mask_ap(quickstart, quickstart_root, tmp_path,
                                                          quickstart_panoptic_registered):
    out = tmp_path / "m2f_instance"
    summary = quickstart.main(["--model", "mask2former", "--task", "instance", "--datasets-root", str(quickstart_root),
                               "--output-dir", str(out), "--demo-images", "2", *TINY,
                               "MODEL.MASK_FORMER.DEC_LAYERS", "2", "MODEL.MASK_FORMER.TRAIN_NUM_POINTS", "256",
                               "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS", "1"])
    assert (summary["model"], summary["task"]) == ("mask2former", "instance")
    assert {"AP", "AP50", "AP75"} <= set(summary) and "mIoU" not in summary
    assert all(0.0 <= summary[k] <= 100.0 for k in ("AP", "AP50", "AP75"))
    assert len(os.listdir(out / "demo")) == 2
    assert json.loads((out / "quickstart_summary.json").read_text())["AP"] == summary["AP"]


def test_maskformer_semantic_quickstart_reports_miou_and_the_majority_baseline(quickstart, quickstart_root,
                                                                                 tmp_path):
    out = tmp_path / "mf_semantic"
    summary = quickstart.main(["--datasets-root", str(quickstart_root), "--output-dir", str(out), "--demo-images",
                               "1", *TINY, "MODEL.MASK_FORMER.DEC_LAYERS", "2"])
    assert (summary["model"], summary["task"]) == ("maskformer", "semantic")
    assert {"mIoU", "pACC", "majority_class_mIoU"} <= set(summary) and "AP" not in summary
    assert 0.0 < summary["majority_class_mIoU"] < 20.0


def test_a_model_without_the_task_is_refused(quickstart):
    with pytest.raises(SystemExit):
        quickstart.main(["--model", "maskformer", "--task", "instance"])


def test_update_readme_needs_all(quickstart):
    with pytest.raises(SystemExit):
        quickstart.main(["--update-readme"])


def test_semask_quickstart_trains_the_semantic_prior(quickstart, quickstart_root, tmp_path):
    out = tmp_path / "semask"
    summary = quickstart.main(["--model", "semask", "--datasets-root", str(quickstart_root), "--output-dir", str(out),
                               "--demo-images", "1", *TINY, "MODEL.MASK_FORMER.DEC_LAYERS", "1",
                               "MODEL.SWIN.EMBED_DIM", "16", "MODEL.SWIN.DEPTHS", "[1, 1, 1, 1]"])
    assert (summary["model"], summary["task"]) == ("semask", "semantic") and 0.0 <= summary["mIoU"] <= 100.0
    records = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines() if line.strip()]
    assert any(r.get("loss_cate", 0.0) > 0.0 for r in records)  # the semantic-prior loss was trained


def test_video_quickstart_reports_video_ap_and_draws_a_video(quickstart_video_root, quickstart_ytvis_registered,
                                                            tmp_path, monkeypatch):
    real = runs.generate_quickstart_videos
    monkeypatch.setattr(runs, "generate_quickstart_videos",
                        lambda root: real(root, num_train=4, num_val=2, num_frames=4, size=64))  # the shared set
    quickstart = load_script("quickstart_cli", "tools/quickstart.py")
    out = tmp_path / "video"
    summary = quickstart.main(["--model", "mask2former-video", "--datasets-root", str(quickstart_video_root),
                               "--output-dir", str(out), *TINY, "MODEL.MASK_FORMER.DEC_LAYERS", "2",
                               "MODEL.MASK_FORMER.TRAIN_NUM_POINTS", "64", "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS",
                               "1", "INPUT.MAX_SIZE_TRAIN", "128", "INPUT.MAX_SIZE_TEST", "128"])
    assert (summary["model"], summary["task"]) == ("mask2former-video", "video")  # the model's only task
    assert {"AP", "AP50", "AP75"} <= set(summary) and "mIoU" not in summary
    assert sorted(os.listdir(out / "demo")) == ["00000.jpg", "00001.jpg", "00002.jpg", "00003.jpg",
                                                "visualization.mp4"]
