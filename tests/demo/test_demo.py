"""demo/predictor.py (drawing choice and confidence thresholds) and demo/demo.py end to end.

The end-to-end runs use the test-only ``StubConvSegmentor`` (tests/stub_meta_arch.py) so they
need no trained model.
"""
import importlib.util
import os
import sys
import types

import cv2
import numpy as np
import pytest
import torch

from segcore.utils.video import VideoWriter, get_video_info, iter_frames, open_video
from segcore.utils.visualizer import Visualizer
from tests.paths import DEMO

DEMO_DIR = DEMO
if DEMO_DIR not in sys.path:
    sys.path.insert(0, DEMO_DIR)

from predictor import VisualizationDemo, sem_seg_to_labels  # noqa: E402  (demo/predictor.py)

GREY = 100
H, W = 96, 128


def _load_demo_cli():
    spec = importlib.util.spec_from_file_location("segcore_demo_cli", os.path.join(DEMO_DIR, "demo.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo_cli():
    return _load_demo_cli()


def _metadata():
    return types.SimpleNamespace(
        stuff_classes=["person", "car", "sky"], stuff_colors=[[220, 20, 60], [0, 0, 142], [70, 130, 180]],
        thing_classes=["person", "car"], thing_colors=[[220, 20, 60], [0, 0, 142]],
    )


def _demo(predictions, threshold=0.5):
    return VisualizationDemo(None, metadata=_metadata(), predictor=lambda image: predictions,
                             confidence_threshold=threshold)


def _bgr():
    return np.full((H, W, 3), GREY, np.uint8)


# ------------------------------------------------------------------ thresholds
def test_low_score_instances_are_not_drawn():
    from segcore.structures import Boxes, Instances

    inst = Instances((H, W))
    masks = torch.zeros(2, H, W, dtype=torch.bool)
    masks[0, 25:45, 5:25] = True
    masks[1, 25:45, 40:60] = True
    inst.pred_masks = masks
    inst.pred_boxes = Boxes(torch.tensor([[5.0, 25.0, 25.0, 45.0], [40.0, 25.0, 60.0, 45.0]]))
    inst.scores = torch.tensor([0.9, 0.3])
    inst.pred_classes = torch.tensor([0, 1])

    preds, vis = _demo({"instances": inst}, 0.5).run_on_image(_bgr())
    out = vis.get_image()
    assert len(preds["instances"]) == 2  # predictions are returned unfiltered
    assert (out[26:45, 40:61] == GREY).all()  # the 0.3 instance: untouched
    assert (out[35:44, 6:24] != GREY).any(-1).all()  # the 0.9 instance: drawn
    expected = Visualizer(_bgr()[:, :, ::-1], _metadata()).draw_instance_predictions(inst[inst.scores >= 0.5])
    np.testing.assert_array_equal(out, expected.get_image())
    # a lower threshold draws both
    out_low = _demo({"instances": inst}, 0.2).run_on_image(_bgr())[1].get_image()
    assert (out_low[35:44, 41:59] != GREY).any(-1).all()


def test_low_score_panoptic_segments_are_not_drawn():
    pan = torch.zeros(H, W, dtype=torch.int32)
    pan[5:30, 5:50] = 1
    pan[5:30, 70:120] = 2
    pan[60:90, 5:120] = 3
    info = [
        {"id": 1, "category_id": 0, "isthing": True, "score": 0.8},
        {"id": 2, "category_id": 1, "isthing": True, "score": 0.2},
        {"id": 3, "category_id": 2, "isthing": False},  # no score: always drawn
    ]
    out = _demo({"panoptic_seg": (pan, info)}, 0.5).run_on_image(_bgr())[1].get_image()
    # exactly the drawing without the 0.2 segment (its pixels are void)
    expected = Visualizer(_bgr()[:, :, ::-1], _metadata()).draw_panoptic_seg(pan, [info[0], info[2]])
    np.testing.assert_array_equal(out, expected.get_image())
    assert (out[5:30, 70:120] == GREY).all()  # segment 2 is untouched
    assert (out[6:8, 6:48] != GREY).any(-1).all()
    np.testing.assert_allclose(out[61, 6], np.round(GREY * 0.4 + np.array([70, 130, 180]) * 0.6), atol=1)
    out_all = _demo({"panoptic_seg": (pan, info)}, 0.1).run_on_image(_bgr())[1].get_image()
    assert (out_all[6:8, 72:118] != GREY).any(-1).all()


def test_sem_seg_low_confidence_pixels_are_left_undrawn():
    probs = torch.full((3, H, W), 1.0 / 3)
    probs[:, :, :64] = torch.tensor([0.9, 0.05, 0.05])[:, None, None]  # left: class 0 at 0.9
    probs[:, :, 64:] = torch.tensor([0.3, 0.4, 0.3])[:, None, None]  # right: class 1 at 0.4
    out = _demo({"sem_seg": probs}, 0.5).run_on_image(_bgr())[1].get_image()
    # the legend sits top-right: look below it
    assert (out[40:, 66:] == GREY).all()
    np.testing.assert_allclose(out[90, 2], np.round(GREY * 0.4 + np.array([220, 20, 60]) * 0.6), atol=1)
    out_low = _demo({"sem_seg": probs}, 0.3).run_on_image(_bgr())[1].get_image()
    np.testing.assert_allclose(out_low[90, 120], np.round(GREY * 0.4 + np.array([0, 0, 142]) * 0.6), atol=1)


def test_sem_seg_to_labels_probability_definitions():
    scores = torch.tensor([[[2.0, 0.1]], [[1.0, 0.1]]])  # (K=2, 1, 2), non-negative: normalised
    np.testing.assert_array_equal(sem_seg_to_labels(scores, 0.6).numpy(), [[0, -1]])  # 2/3 vs 1/2
    logits = torch.tensor([[[3.0, 0.2]], [[-1.0, 0.0]]])  # negative values: softmax
    np.testing.assert_array_equal(sem_seg_to_labels(logits, 0.9).numpy(), [[0, -1]])  # 0.98 vs 0.55
    np.testing.assert_array_equal(sem_seg_to_labels(logits, 0.0).numpy(), [[0, 0]])
    with pytest.raises(ValueError, match="shape"):
        sem_seg_to_labels(torch.zeros(4, 4), 0.5)


def test_panoptic_preferred_over_instances_and_sem_seg():
    pan = torch.zeros(H, W, dtype=torch.int32)
    pan[:, :40] = 1
    sem = torch.zeros(3, H, W)
    sem[2] = 1.0  # would colour everything "sky"
    preds = {"panoptic_seg": (pan, [{"id": 1, "category_id": 1, "isthing": False}]), "sem_seg": sem}
    out = _demo(preds).run_on_image(_bgr())[1].get_image()
    assert (out[40:, 42:] == GREY).all()
    with pytest.raises(KeyError, match="none of"):
        _demo({"proposals": None}).run_on_image(_bgr())


def test_run_on_video_yields_drawn_bgr_frames(tmp_path):
    path = str(tmp_path / "in.mp4")
    with VideoWriter(path, 10, (W, H)) as w:
        for _ in range(5):
            w.write(_bgr())
    sem = torch.zeros(3, H, W)
    sem[0] = 1.0
    frames = list(_demo({"sem_seg": sem}).run_on_video(open_video(path)))
    assert len(frames) == 5 and frames[0].shape == (H, W, 3)
    # BGR order: person (220, 20, 60) blended over grey, seen below the legend
    np.testing.assert_allclose(frames[2][90, 2], np.round(GREY * 0.4 + np.array([60, 20, 220]) * 0.6), atol=6)


def test_threshold_out_of_range():
    with pytest.raises(ValueError, match="confidence_threshold"):
        _demo({}, 1.5)


# ------------------------------------------------------------------ command line
def test_glob_without_match_errors(demo_cli, tmp_path, capsys):
    pattern = str(tmp_path / "nothing_*.jpg")
    with pytest.raises(SystemExit) as e:
        demo_cli.main(["--config-file", "x.yaml", "--input", pattern, "--output", str(tmp_path)])
    assert e.value.code == 2
    assert "nothing_*.jpg" in capsys.readouterr().err


def test_missing_output_without_display_errors(demo_cli, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if not sys.platform.startswith("linux"):
        pytest.skip("display detection by environment is Linux-specific")
    assert not demo_cli.display_available()
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), _bgr())
    with pytest.raises(SystemExit) as e:
        demo_cli.main(["--config-file", "x.yaml", "--input", str(img)])
    assert e.value.code == 2
    assert "--output is required" in capsys.readouterr().err


def test_input_sources_are_exclusive(demo_cli, tmp_path, capsys):
    with pytest.raises(SystemExit):
        demo_cli.main(["--config-file", "x.yaml", "--webcam", "--video-input", "v.mp4", "--output", str(tmp_path)])
    assert "exactly one of" in capsys.readouterr().err


def test_expand_inputs_and_output_paths(demo_cli, tmp_path):
    for name in ("b.png", "a.png", "c.jpg"):
        cv2.imwrite(str(tmp_path / name), _bgr())
    files = demo_cli.expand_inputs([str(tmp_path / "*.png"), str(tmp_path / "c.jpg"), str(tmp_path / "a.png")])
    assert [os.path.basename(f) for f in files] == ["a.png", "b.png", "c.jpg"]
    with pytest.raises(FileNotFoundError, match="missing.png"):
        demo_cli.expand_inputs([str(tmp_path / "missing.png")])
    with pytest.raises(ValueError, match="file name"):
        demo_cli.image_output_paths(files, str(tmp_path / "out.png"))
    out_dir = tmp_path / "new" / "dir"
    assert demo_cli.image_output_paths(files, str(out_dir))[2] == str(out_dir / "c.jpg") and out_dir.is_dir()
    assert demo_cli.video_output_path("/x/clip.avi", str(tmp_path)) == str(tmp_path / "clip.mp4")
    assert demo_cli.video_output_path("/x/clip.avi", str(tmp_path / "o.mkv")) == str(tmp_path / "o.mkv")


def test_a_folder_input_stands_for_its_image_files(demo_cli, tmp_path, capsys):
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    for name in ("b.PNG", "a.jpg", "nested/c.png"):
        cv2.imwrite(str(folder / name), _bgr())
    (folder / "notes.txt").write_text("not an image")
    (folder / "clip.json").write_text("{}")
    files = demo_cli.expand_inputs([str(folder)])
    assert [os.path.relpath(f, folder) for f in files] == ["a.jpg", "b.PNG"]  # its own files, not the subfolder's
    assert demo_cli.expand_inputs([str(folder) + os.sep, str(folder / "a.jpg")]) == files  # no duplicates
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    with pytest.raises(SystemExit) as e:
        demo_cli.main(["--config-file", "x.yaml", "--input", str(empty), "--output", str(tmp_path / "out")])
    assert e.value.code == 2 and "holds no image file" in capsys.readouterr().err


# ------------------------------------------------------------------ end to end with the stub model
@pytest.fixture
def stub_config(tmp_path):
    engine = pytest.importorskip("segcore.engine")
    if not hasattr(engine, "DefaultPredictor"):
        pytest.skip("segcore.engine.DefaultPredictor is not available")
    from tests.stub_meta_arch import write_stub_config

    return write_stub_config(tmp_path)


def _image_file(path, h=40, w=56):
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2] = (30, 200, 90)
    img[h // 2:, :] = (220, 40, 10)
    cv2.imwrite(str(path), img)
    return str(path)


def test_demo_images_end_to_end(demo_cli, stub_config, tmp_path):
    single = _image_file(tmp_path / "one.png")
    out_file = str(tmp_path / "vis" / "one_vis.png")
    assert demo_cli.main(["--config-file", stub_config, "--input", single, "--output", out_file,
                          "--confidence-threshold", "0.0"]) == [out_file]
    vis = cv2.imread(out_file)
    assert vis.shape == (40, 56, 3)
    assert (vis != cv2.imread(single)).any(-1).mean() > 0.5  # drawn over

    folder = tmp_path / "imgs"
    folder.mkdir()
    for name, (h, w) in {"a.png": (40, 56), "b.png": (30, 20)}.items():
        _image_file(folder / name, h, w)
    out_dir = tmp_path / "out_dir"
    written = demo_cli.main(["--config-file", stub_config, "--input", str(folder / "*.png"), "--output", str(out_dir)])
    assert sorted(os.path.basename(p) for p in written) == ["a.png", "b.png"]
    assert cv2.imread(str(out_dir / "b.png")).shape == (30, 20, 3)
    # the folder itself: the same pictures
    from_folder = demo_cli.main(["--config-file", stub_config, "--input", str(folder), "--output",
                                 str(tmp_path / "from_folder")])
    assert [os.path.basename(p) for p in from_folder] == ["a.png", "b.png"]
    for name in ("a.png", "b.png"):
        np.testing.assert_array_equal(cv2.imread(str(tmp_path / "from_folder" / name)), cv2.imread(str(out_dir / name)))


def test_demo_continues_after_an_unreadable_image_and_exits_nonzero(demo_cli, stub_config, tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    _image_file(folder / "a.png")
    (folder / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n but the rest is not an image")
    _image_file(folder / "c.png", 30, 20)
    out_dir = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        demo_cli.main(["--config-file", stub_config, "--input", str(folder / "*.png"), "--output", str(out_dir)])
    # a message (exit status 1) listing exactly the file that failed, and why
    message = e.value.code
    assert isinstance(message, str) and "1 of 3 image(s)" in message
    assert str(folder / "b.png") in message and "corrupt or not an image" in message
    assert "a.png" not in message and "c.png" not in message
    # the images after the bad one were processed: their drawings are written
    assert sorted(os.listdir(out_dir)) == ["a.png", "c.png"]
    assert cv2.imread(str(out_dir / "c.png")).shape == (30, 20, 3)
    captured = capsys.readouterr()
    log = captured.out + captured.err
    skip_lines = [line for line in log.splitlines() if "Skipping" in line]
    assert len(skip_lines) == 1 and str(folder / "b.png") in skip_lines[0]
    assert "Saved 2 visualization(s)" in captured.out


def test_draw_all_continues_after_an_unreadable_image(demo_cli, tmp_path):
    preds = _three_outputs()
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), _bgr())
    missing = tmp_path / "gone.png"  # listed, then deleted before it is read
    demo = VisualizationDemo(None, metadata=_metadata(), predictor=lambda i: preds)
    with pytest.raises(SystemExit, match="gone.png"):
        demo_cli.run_on_images(demo, [str(missing), str(good)], str(tmp_path / "out"), draw_all=True)
    assert len(os.listdir(tmp_path / "out")) == 3  # one drawing per output of good.png


def test_demo_logs_each_line_once(demo_cli, capsys):
    import logging

    segcore_logger = logging.getLogger("segcore")
    before = list(segcore_logger.handlers)
    try:
        demo_cli.setup_logging()
        demo_cli.setup_logging()  # e.g. main() run twice in one process, or after default_setup
        demo_cli.logger.info("demo-log-line-7f3a")
        captured = capsys.readouterr()
        assert (captured.out + captured.err).count("demo-log-line-7f3a") == 1
    finally:
        for handler in segcore_logger.handlers[:]:
            if handler not in before:
                segcore_logger.removeHandler(handler)


def test_demo_video_end_to_end(demo_cli, stub_config, tmp_path):
    video = str(tmp_path / "clip.avi")
    with VideoWriter(video, 8.0, (40, 32)) as w:
        for i in range(6):
            frame = np.zeros((32, 40, 3), np.uint8)
            frame[:, : 5 * (i + 1)] = (20, 180, 240)
            w.write(frame)
    out_dir = tmp_path / "out"
    (path,) = demo_cli.main(["--config-file", stub_config, "--video-input", video, "--output", str(out_dir),
                             "--opts", "MODEL.DEVICE", "cuda"])  # falls back to cpu without CUDA
    assert path == str(out_dir / "clip.mp4")
    cap = open_video(path)
    info = get_video_info(cap)
    cap.release()
    assert (info.width, info.height, info.fps) == (40, 32, pytest.approx(8.0))
    assert len(list(iter_frames(path))) == 6


def test_video_output_extension_checked_before_running(demo_cli, tmp_path, capsys):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    with pytest.raises(SystemExit):
        demo_cli.main(["--config-file", "x.yaml", "--video-input", str(video), "--output", str(tmp_path / "o.webm")])
    assert "a video must end in one of" in capsys.readouterr().err


# ------------------------------------------------------------------ several outputs (Mask2Former)
def _three_outputs():
    from segcore.structures import Boxes, Instances

    pan = torch.zeros(H, W, dtype=torch.int32)
    pan[10:40, 10:60] = 1
    inst = Instances((H, W))
    inst.pred_masks = torch.zeros(1, H, W, dtype=torch.bool)
    inst.pred_masks[0, 50:80, 70:110] = True
    inst.pred_boxes = Boxes(torch.tensor([[70.0, 50.0, 110.0, 80.0]]))
    inst.scores, inst.pred_classes = torch.tensor([0.9]), torch.tensor([1])
    sem = torch.zeros(3, H, W)
    sem[2] = 1.0
    return {"panoptic_seg": (pan, [{"id": 1, "category_id": 0, "isthing": True}]), "instances": inst, "sem_seg": sem}


def test_draw_chooses_the_output_and_visualize_all_draws_each():
    preds = _three_outputs()
    auto = VisualizationDemo(None, metadata=_metadata(), predictor=lambda i: preds)
    assert auto.output_to_draw(preds) == "panoptic_seg"
    drawings = auto.visualize_all(_bgr(), preds)
    assert list(drawings) == ["panoptic_seg", "instances", "sem_seg"]
    pan_img, inst_img, sem_img = (drawings[k].get_image() for k in drawings)
    assert (pan_img[20, 20] != GREY).any() and (pan_img[60, 90] == GREY).all()  # only the panoptic segment
    assert (inst_img[60, 90] != GREY).any() and (inst_img[20, 20] == GREY).all()  # only the instance
    assert (sem_img[90, 5] != GREY).any()  # sky everywhere
    only_inst = VisualizationDemo(None, metadata=_metadata(), predictor=lambda i: preds, draw="instances")
    np.testing.assert_array_equal(only_inst.run_on_image(_bgr())[1].get_image(), inst_img)
    with pytest.raises(KeyError, match="instances"):
        only_inst.visualize(_bgr(), {"sem_seg": preds["sem_seg"]})
    with pytest.raises(ValueError, match="draw"):
        VisualizationDemo(None, metadata=_metadata(), predictor=lambda i: preds, draw="boxes")


def test_demo_draw_all_writes_one_picture_per_output(demo_cli, tmp_path, monkeypatch):
    preds = _three_outputs()
    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), _bgr())
    demo = VisualizationDemo(None, metadata=_metadata(), predictor=lambda i: preds)
    written = demo_cli.run_on_images(demo, [str(image)], str(tmp_path / "out"), draw_all=True)
    names = sorted(os.path.basename(p) for p in written)
    assert names == ["photo_instances.png", "photo_panoptic_seg.png", "photo_sem_seg.png"]
    assert all(cv2.imread(p).shape[:2] == (H, W) for p in written)
    with pytest.raises(SystemExit):
        demo_cli.main(["--config-file", "x.yaml", "--video-input", str(image), "--draw", "all",
                       "--output", str(tmp_path / "v.mp4")])
