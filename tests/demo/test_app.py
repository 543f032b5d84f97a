"""demo/app.py and demo/web_app.py without a browser: what the page shows, its limits and errors.

The page itself, in a real browser, is tested by tests/demo/test_app_browser.py. Here the
:class:`web_app.WebDemo` runs over a :class:`predictor.VisualizationDemo` with a fixed fake model
output (or the test-only ``StubConvSegmentor``), so each drawing can be compared with the demo's.
"""
import os
import socket
import sys
import threading
import time
import types

import cv2
import numpy as np
import pytest
import torch

from segcore.data.detection_utils import ImageReadError
from segcore.utils.video import VideoWriter, iter_frames
from tests.e2e_utils import load_script
from tests.paths import DEMO

if DEMO not in sys.path:
    sys.path.insert(0, DEMO)

import web_app  # noqa: E402  (demo/web_app.py)
from predictor import LegendEntry, VisualizationDemo, compact_predictions  # noqa: E402

H, W = 48, 64
GREY = 100


@pytest.fixture(scope="module")
def app_cli():
    return load_script("segcore_web_app_cli", "demo/app.py")


def _metadata():
    return types.SimpleNamespace(
        stuff_classes=["person", "car", "sky"], stuff_colors=[[220, 20, 60], [0, 0, 142], [70, 130, 180]],
        thing_classes=["person", "car"], thing_colors=[[220, 20, 60], [0, 0, 142]],
    )


def _three_outputs(h=H, w=W):
    """A Mask2Former-like output: panoptic (a scored thing, an unscored stuff segment), two
    instances (scores 0.9 and 0.3), and semantic scores (sky, a confident person block)."""
    from segcore.structures import Boxes, Instances

    pan = torch.zeros(h, w, dtype=torch.int32)
    pan[: h // 2, : w // 2] = 1
    pan[h // 2:, :] = 2
    info = [{"id": 1, "category_id": 0, "isthing": True, "score": 0.8},
            {"id": 2, "category_id": 2, "isthing": False}]
    inst = Instances((h, w))
    masks = torch.zeros(2, h, w, dtype=torch.bool)
    masks[0, 4:20, 4:20] = True  # 256 pixels
    masks[1, 24:40, 30:60] = True  # 480 pixels
    inst.pred_masks = masks
    inst.pred_boxes = Boxes(torch.tensor([[4.0, 4.0, 20.0, 20.0], [30.0, 24.0, 60.0, 40.0]]))
    inst.scores = torch.tensor([0.9, 0.3])
    inst.pred_classes = torch.tensor([0, 1])
    sem = torch.full((3, h, w), 0.1)
    sem[2] = 0.8
    sem[0, : h // 4, : w // 4] = 9.0
    return {"panoptic_seg": (pan, info), "instances": inst, "sem_seg": sem}


def _demo(predict=None, threshold=0.5):
    return VisualizationDemo(None, metadata=_metadata(), confidence_threshold=threshold,
                             predictor=predict or (lambda image: _three_outputs(*image.shape[:2])))


def _web(tmp_path, predict=None, **kwargs):
    return web_app.WebDemo(_demo(predict), work_dir=str(tmp_path / "work"), **kwargs)


def _photo(path, h=H, w=W):
    img = np.full((h, w, 3), GREY, np.uint8)
    img[: h // 2, : w // 3] = (30, 200, 90)
    cv2.imwrite(str(path), img)
    return str(path)


# ------------------------------------------------------------------ legend (demo/predictor.py)
def test_semantic_legend_lists_the_drawn_classes_with_their_share():
    preds = _three_outputs()
    rows = _demo().legend(preds, "sem_seg")
    # sky everywhere but the person block (probability 9 / 9.9), by decreasing share, class colours
    assert [r.name for r in rows] == ["sky", "person"]
    person_share = (H // 4) * (W // 4) / (H * W)
    assert rows[1].share == pytest.approx(person_share) and rows[0].share == pytest.approx(1 - person_share)
    assert rows[0].color == (70, 130, 180) and rows[0].score is None
    # sky's probability is 0.8 / 1.0: undrawn at 0.9, and gone from the legend
    assert [r.name for r in _demo().legend(preds, "sem_seg", confidence_threshold=0.9)] == ["person"]


def test_panoptic_and_instance_legends_carry_the_scores():
    preds = _three_outputs()
    pan = _demo().legend(preds, "panoptic_seg")
    assert [(r.name, r.score) for r in pan] == [("sky", None), ("person", pytest.approx(0.8))]
    assert pan[0].share == pytest.approx(0.5) and pan[1].share == pytest.approx(0.25)
    assert [r.name for r in _demo().legend(preds, "panoptic_seg", confidence_threshold=0.9)] == ["sky"]
    inst = _demo(threshold=0.0).legend(preds, "instances")
    assert [(r.name, r.score, r.color) for r in inst] == [("person", pytest.approx(0.9), None),
                                                          ("car", pytest.approx(0.3), None)]
    assert inst[1].share == pytest.approx(480 / (H * W))
    assert [r.name for r in _demo().legend(preds, "instances")] == ["person"]  # 0.3 < 0.5: not drawn


def test_compact_predictions_draw_as_the_model_output_at_every_threshold():
    preds = _three_outputs()
    compact = compact_predictions(preds)
    demo, image = _demo(), np.full((H, W, 3), GREY, np.uint8)
    for kind in ("panoptic_seg", "instances", "sem_seg"):
        for thr in (0.0, 0.5, 0.85):
            full = demo.visualize(image, preds, kind, confidence_threshold=thr).get_image()
            np.testing.assert_array_equal(demo.visualize(image, compact, kind, confidence_threshold=thr).get_image(), full)
            assert demo.legend(compact, kind, confidence_threshold=thr) == demo.legend(preds, kind, confidence_threshold=thr)
    with pytest.raises(ValueError, match="confidence_threshold"):
        demo.visualize(image, preds, confidence_threshold=1.5)


def test_legend_html_escapes_names_and_shows_scores_only_when_there_are_some():
    rows = [LegendEntry("<b>sky</b>", 0.25, (1, 2, 3)), LegendEntry("car", 0.5)]
    table = web_app.legend_html(rows)
    assert "&lt;b&gt;sky&lt;/b&gt;" in table and "<b>sky" not in table
    assert "25.0 %" in table and "rgb(1, 2, 3)" in table and "score" not in table
    assert "<th>score</th>" in web_app.legend_html([LegendEntry("car", 0.5, None, 0.75)])
    assert "Nothing drawn" in web_app.legend_html([])


# ------------------------------------------------------------------ images
def test_segment_draws_what_the_demo_draws_and_redraws_without_the_model(tmp_path):
    calls = []

    def predict(image):
        calls.append(image.shape)
        return _three_outputs(*image.shape[:2])

    web = _web(tmp_path, predict)
    path = _photo(tmp_path / "photo.png")
    result = web.segment(path, "my photo.png")
    image = cv2.imread(path)
    demo_preds, demo_vis = _demo().run_on_image(image)
    assert result.kind == "panoptic_seg" and result.kinds == ["panoptic_seg", "instances", "sem_seg"]
    np.testing.assert_array_equal(result.overlay_rgb, demo_vis.get_image())  # demo/demo.py's drawing
    np.testing.assert_array_equal(result.input_rgb, image[:, :, ::-1])
    assert "my photo.png" in result.summary() and "model" in result.summary()
    # another output and threshold: the same drawing as the demo's, no second model run
    again = web.redraw(result.result_id, "instances", 0.2)
    assert len(calls) == 1 and again.kind == "instances"
    np.testing.assert_array_equal(again.overlay_rgb,
                                  _demo().visualize(image, demo_preds, "instances", confidence_threshold=0.2).get_image())
    assert [r.name for r in again.legend] == ["person", "car"]
    # an output the model does not return falls back to the demo's choice
    assert web.redraw(result.result_id, "depth", 0.5).kind == "panoptic_seg"


def test_only_the_latest_results_are_kept(tmp_path):
    web = _web(tmp_path, results_kept=2)
    path = _photo(tmp_path / "a.png")
    first, second, third = (web.segment(path) for _ in range(3))
    web.redraw(second.result_id)  # kept: the most recent two
    web.redraw(third.result_id)
    with pytest.raises(KeyError, match="upload the image again"):
        web.redraw(first.result_id)


def test_a_huge_image_is_resized_with_a_note(tmp_path):
    web = _web(tmp_path, max_image_side=40)
    result = web.segment(_photo(tmp_path / "big.png", h=60, w=100))
    assert result.input_rgb.shape == (24, 40, 3) and result.overlay_rgb.shape == (24, 40, 3)
    assert len(result.notes) == 1 and "100×60" in result.notes[0] and "40×24" in result.notes[0]
    assert "Note:" in result.summary()
    assert web.segment(_photo(tmp_path / "small.png", h=30, w=40)).notes == []


def test_a_file_that_is_no_image_is_named_as_the_user_knows_it(tmp_path):
    web = _web(tmp_path)
    upload = tmp_path / "gradio_cache_ab12" / "notes.txt"
    upload.parent.mkdir()
    upload.write_text("not an image")
    with pytest.raises(ImageReadError, match="corrupt or not an image") as e:
        web.segment(str(upload), "notes.txt")
    assert "gradio_cache_ab12" not in str(e.value) and "'notes.txt'" in str(e.value)
    with pytest.raises(FileNotFoundError):
        web.segment(str(tmp_path / "gone.png"))


def test_one_model_run_at_a_time_the_others_wait(tmp_path):
    active, most = [0], [0]
    lock = threading.Lock()

    def predict(image):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(0.02)  # gives the other threads the chance to overlap (nothing is timed)
        with lock:
            active[0] -= 1
        return _three_outputs(*image.shape[:2])

    web = _web(tmp_path, predict)
    path = _photo(tmp_path / "a.png")
    results = []
    threads = [threading.Thread(target=lambda: results.append(web.segment(path))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and most[0] == web_app.MODEL_CONCURRENCY == 1


def test_example_photographs_are_written_once(tmp_path):
    web = _web(tmp_path)
    paths = web.example_photos()
    assert [os.path.basename(p) for p in paths] == [f"{n}.png" for n in web_app.EXAMPLE_PHOTOS]
    assert all(cv2.imread(p).ndim == 3 for p in paths)
    assert web.example_photos() == paths


# ------------------------------------------------------------------ videos
def _clip(path, frames=6, size=(40, 32)):
    with VideoWriter(str(path), 8.0, size) as w:
        for i in range(frames):
            frame = np.full((size[1], size[0], 3), GREY, np.uint8)
            frame[:, : 5 * (i + 1)] = (20, 180, 240)
            w.write(frame)
    return str(path)


def test_a_video_comes_back_segmented_with_progress(tmp_path):
    web = _web(tmp_path)
    progress = []
    result = web.segment_video(_clip(tmp_path / "clip.mp4"), "clip.mp4", 0.5, lambda *a: progress.append(a))
    assert result.path.endswith(".webm") and result.frames == 6 and result.notes == []
    assert progress == [(i, 6) for i in range(1, 7)]
    frames = list(iter_frames(result.path))
    assert len(frames) == 6 and frames[0].shape == (32, 40, 3)
    assert "6 frames" in result.summary("clip.mp4")
    # a longer video is cut, and the page says so
    cut = _web(tmp_path / "cut", max_video_frames=4).segment_video(_clip(tmp_path / "long.mp4"), "long.mp4")
    assert cut.frames == 4 and "first 4" in cut.notes[0]


def test_a_file_that_is_no_video_is_an_error_naming_it(tmp_path):
    bad = tmp_path / "upload_cache" / "movie.mp4"
    bad.parent.mkdir()
    bad.write_bytes(b"not a video at all")
    with pytest.raises(OSError, match="movie.mp4") as e:
        _web(tmp_path).segment_video(str(bad), "movie.mp4")
    assert "upload_cache" not in str(e.value)
    with pytest.raises(ValueError, match="scale it down"):
        _web(tmp_path, max_image_side=16).segment_video(_clip(tmp_path / "c.mp4"), "c.mp4")


# ------------------------------------------------------------------ command line
@pytest.fixture
def stub_config(tmp_path):
    from tests.stub_meta_arch import write_stub_config

    return write_stub_config(tmp_path)


def test_a_model_that_does_not_load_stops_before_serving(app_cli, stub_config, capsys):
    from segcore.engine import run_cli
    from segcore.engine.cli import UserErrorExit

    with pytest.raises(UserErrorExit):  # the stub has no weight file: refused without ALLOW_PARTIAL_WEIGHTS
        run_cli(lambda: app_cli.main(["--config-file", stub_config, "--port", "0",
                                      "--opts", "MODEL.ALLOW_PARTIAL_WEIGHTS", "False"], block=False), prog="app.py")
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("app.py: error: ") and "MODEL.WEIGHTS" in err[-1]


def test_a_model_that_fails_on_an_image_stops_before_serving(app_cli, tmp_path):
    def broken(image):
        raise RuntimeError("kernel not built")

    with pytest.raises(app_cli.AppStartError, match="no page is served: RuntimeError: kernel not built"):
        app_cli.warm_up(_web(tmp_path, broken))


def test_quickstart_without_a_trained_model_says_to_train_it(app_cli, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"python tools/quickstart.py"):
        app_cli.quickstart_model([str(tmp_path)])
    weights = tmp_path / "output" / "quickstart" / "model_final.pth"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"")
    config, found = app_cli.quickstart_model([str(tmp_path / "elsewhere"), str(tmp_path)])
    assert found == str(weights) and config.endswith(os.path.join("quickstart", "maskformer_R18_quickstart.yaml"))
    assert os.path.isfile(config)


def test_command_line_mistakes(app_cli, stub_config, capsys):
    with pytest.raises(SystemExit) as e:
        app_cli.main([])
    assert e.value.code == 2 and "--config-file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        app_cli.main(["--quickstart", "--config-file", stub_config])
    assert "not allowed with" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        app_cli.main(["--config-file", stub_config, "--confidence-threshold", "2"])
    assert "--confidence-threshold" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(SystemExit) as e:  # before any model is loaded
            app_cli.main(["--config-file", stub_config, "--port", str(taken.getsockname()[1])])
    assert e.value.code == 2 and "in use" in capsys.readouterr().err
