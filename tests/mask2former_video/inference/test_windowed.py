"""Windowed inference of long videos: the window ranges, the query linking, and that a video no
longer than a window gives exactly the one-clip output (the original's inference)."""
import os

import pytest
import torch

from mask2former_video.inference import WindowedVideoInference, link_queries
from mask2former_video.inference.windowed import window_starts
from segcore.engine import setup_cfg
from segcore.modeling import build_model
from tests.paths import CONFIGS

TINY = ["MODEL.DEVICE", "cpu", "MODEL.SEM_SEG_HEAD.CONVS_DIM", "32", "MODEL.SEM_SEG_HEAD.MASK_DIM", "32",
        "MODEL.MASK_FORMER.HIDDEN_DIM", "32", "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", "6",
        "MODEL.MASK_FORMER.DIM_FEEDFORWARD", "64", "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS", "1"]


def test_window_ranges_cover_the_video_with_the_overlap():
    assert window_starts(10, 4, 1) == [(0, 4), (3, 7), (6, 10)]
    assert window_starts(5, 4, 2) == [(0, 4), (1, 5)]  # the last window ends at the last frame
    assert window_starts(3, 4, 1) == [(0, 3)]
    with pytest.raises(ValueError):
        window_starts(10, 4, 4)
    with pytest.raises(ValueError):
        window_starts(10, 0, 1)


def test_link_queries_recovers_a_permutation():
    torch.manual_seed(0)
    previous = torch.randn(5, 2, 8, 8) * 4
    perm = torch.tensor([3, 0, 4, 1, 2])
    current = torch.empty_like(previous)
    current[perm] = previous
    assert link_queries(previous, current).tolist() == perm.tolist()


@pytest.fixture(scope="module")
def model():
    cfg = setup_cfg(os.path.join(CONFIGS, "quickstart", "video_maskformer2_R18_quickstart.yaml"), TINY)
    torch.manual_seed(0)
    return build_model(cfg).eval()


def _video(t, h=40, w=56):
    g = torch.Generator().manual_seed(1)
    return {"image": [torch.randint(0, 255, (3, h, w), generator=g, dtype=torch.uint8) for _ in range(t)],
            "height": h, "width": w}


def test_a_video_within_one_window_gives_the_one_clip_output(model):
    video = _video(3)
    with torch.inference_mode():
        whole = model([video])
        windowed = WindowedVideoInference(model, window=4, overlap=1)(video)
    assert windowed["pred_scores"] == whole["pred_scores"] and windowed["pred_labels"] == whole["pred_labels"]
    assert all(torch.equal(a, b) for a, b in zip(windowed["pred_masks"], whole["pred_masks"]))


def test_windows_give_tubes_over_the_whole_video(model):
    with torch.inference_mode():
        out = WindowedVideoInference(model, window=2, overlap=1)(_video(5))
    assert out["image_size"] == (40, 56) and len(out["pred_masks"]) == 10
    assert all(m.dtype == torch.bool and tuple(m.shape) == (5, 40, 56) for m in out["pred_masks"])
    assert all(0 <= s <= 1 for s in out["pred_scores"]) and out["pred_scores"] == sorted(out["pred_scores"], reverse=True)
