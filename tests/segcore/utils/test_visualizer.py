"""Visualizer, VideoVisualizer, colormap and video I/O on small generated images and videos."""
import os
import types

import cv2
import numpy as np
import pytest
import torch

from segcore.utils.colormap import NUM_COLORS, class_color, colormap, random_colors
from segcore.utils.video import VideoWriter, get_video_info, iter_frames, open_video
from segcore.utils.video_visualizer import VideoVisualizer
from segcore.utils.visualizer import ColorMode, Visualizer

GREY = 100
H, W = 96, 128
ALPHA = 0.6


def _image():
    return np.full((H, W, 3), GREY, np.uint8)


def _blend(color, alpha=ALPHA, base=GREY):
    return np.round(base * (1 - alpha) + np.asarray(color, np.float64) * alpha)


def _stuff_metadata():
    return types.SimpleNamespace(
        stuff_classes=["sky", "road", "tree"], stuff_colors=[[10, 20, 30], [200, 0, 0], [0, 200, 0]]
    )


def _two_region_sem_seg():
    """Class 1 at rows 40..89 x cols 10..69, class 2 at rows 50..89 x cols 80..124, rest ignore (255)."""
    seg = np.full((H, W), 255, np.int64)
    seg[40:90, 10:70] = 1
    seg[50:90, 80:125] = 2
    return seg


def _panoptic_metadata():
    # MaskFormer convention: stuff_classes lists every class, things included.
    return types.SimpleNamespace(
        stuff_classes=["person", "car", "sky"], stuff_colors=[[220, 20, 60], [0, 0, 142], [70, 130, 180]],
        thing_classes=["person", "car"], thing_colors=[[220, 20, 60], [0, 0, 142]],
    )


def _instances(scores=(0.9, 0.3)):
    from segcore.structures import Boxes, Instances

    masks = torch.zeros(2, H, W, dtype=torch.bool)
    masks[0, 30:70, 10:50] = True
    masks[1, 40:80, 70:120] = True
    inst = Instances((H, W))
    inst.pred_masks = masks
    inst.pred_boxes = Boxes(torch.tensor([[10.0, 30.0, 50.0, 70.0], [70.0, 40.0, 120.0, 80.0]]))
    inst.scores = torch.tensor(scores)
    inst.pred_classes = torch.tensor([0, 1])
    return inst


# ------------------------------------------------------------------ colormap
def test_colormap_distinct_and_ordered():
    rgb = colormap(rgb=True, maximum=255)
    assert rgb.shape == (NUM_COLORS, 3) and rgb.min() >= 0 and rgb.max() <= 255
    assert len({tuple(np.round(c).astype(int)) for c in rgb}) == NUM_COLORS
    np.testing.assert_allclose(colormap(rgb=False), rgb[:, ::-1])
    np.testing.assert_allclose(colormap(rgb=True, maximum=1) * 255, rgb, rtol=1e-5)
    np.testing.assert_allclose(class_color(3 + NUM_COLORS), class_color(3))
    cols = random_colors(10, rgb=True, rng=np.random.default_rng(0))
    assert len({tuple(c) for c in cols}) == 10


# ------------------------------------------------------------------ semantic
def test_sem_seg_blends_class_colors_and_keeps_size():
    out = Visualizer(_image(), _stuff_metadata()).draw_sem_seg(_two_region_sem_seg(), alpha=ALPHA).get_image()
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    # interior pixels away from the label (region centres) and the outline
    np.testing.assert_allclose(out[45, 15], _blend([200, 0, 0]), atol=1)
    np.testing.assert_allclose(out[85, 65], _blend([200, 0, 0]), atol=1)
    np.testing.assert_allclose(out[85, 84], _blend([0, 200, 0]), atol=1)
    # ignored pixels (255) outside the legend are untouched
    assert (out[40:, :5] == GREY).all() and (out[90:, :] == GREY).all()


def test_sem_seg_labels_and_legend_drawn():
    seg = _two_region_sem_seg()
    with_legend = Visualizer(_image(), _stuff_metadata()).draw_sem_seg(seg).get_image()
    no_legend = Visualizer(_image(), _stuff_metadata()).draw_sem_seg(seg, legend=False).get_image()
    # the label of class 1 sits at its region centre on a dark box: darker than the blended fill
    fill = _blend([200, 0, 0])
    label_area = no_legend[60:70, 30:50].astype(int)
    assert (np.abs(label_area - fill).sum(-1) > 30).sum() > 20
    # the legend lives in the top-right corner (pixels of the ignored area change) and has an
    # opaque swatch of each drawn class colour; "sky" (absent) is not listed
    corner_changed = (with_legend[:40] != no_legend[:40]).any(-1)
    assert corner_changed[:, W // 2:].sum() > 100 and not corner_changed[:, :W // 3].any()
    corner = with_legend[:40, W // 2:].reshape(-1, 3)
    for color in ([200, 0, 0], [0, 200, 0]):
        assert (corner == color).all(-1).sum() >= 9
    assert not (corner == [10, 20, 30]).all(-1).any()


def test_sem_seg_without_metadata_uses_palette_and_skips_negative():
    seg = np.full((H, W), -1, np.int64)
    seg[10:90, 5:60] = 7
    out = Visualizer(_image()).draw_sem_seg(torch.from_numpy(seg), legend=False).get_image()
    np.testing.assert_allclose(out[15, 10], _blend(class_color(7)), atol=1)
    assert (out[:, 62:] == GREY).all()


def test_sem_seg_area_threshold_drops_small_components():
    seg = np.full((H, W), 255, np.int64)
    seg[10:60, 10:60] = 1  # 2500 px
    seg[80:84, 100:104] = 1  # 16 px
    out = Visualizer(_image(), _stuff_metadata()).draw_sem_seg(seg, area_threshold=100, legend=False).get_image()
    assert (out[80:84, 100:104] == GREY).all()
    np.testing.assert_allclose(out[12, 12], _blend([200, 0, 0]), atol=1)


def test_sem_seg_shape_mismatch_raises():
    with pytest.raises(ValueError, match="sem_seg has shape"):
        Visualizer(_image()).draw_sem_seg(np.zeros((H + 1, W), np.int64))


def test_scale_resizes_output():
    vis = Visualizer(_image(), _stuff_metadata(), scale=2.0)
    out = vis.draw_sem_seg(_two_region_sem_seg(), legend=False).get_image()
    assert out.shape == (2 * H, 2 * W, 3)
    np.testing.assert_allclose(out[2 * 45, 2 * 15], _blend([200, 0, 0]), atol=1)


def test_save_round_trip_and_bad_path(tmp_path):
    vis = Visualizer(_image(), _stuff_metadata()).draw_sem_seg(_two_region_sem_seg())
    path = str(tmp_path / "vis.png")
    vis.save(path)
    np.testing.assert_array_equal(cv2.imread(path)[:, :, ::-1], vis.get_image())
    with pytest.raises(OSError, match="no_such_dir"):
        vis.save(str(tmp_path / "no_such_dir" / "vis.png"))


# ------------------------------------------------------------------ panoptic
def test_panoptic_stuff_color_things_jittered_void_untouched():
    pan = np.zeros((H, W), np.int32)
    pan[10:50, 5:45] = 1
    pan[10:50, 55:95] = 2
    pan[60:90, 5:120] = 3
    info = [
        {"id": 1, "category_id": 0, "isthing": True, "score": 0.87},
        {"id": 2, "category_id": 0, "isthing": True, "score": 0.6},
        {"id": 3, "category_id": 2, "isthing": False},
    ]
    out = Visualizer(_image(), _panoptic_metadata()).draw_panoptic_seg(torch.from_numpy(pan), info).get_image()
    assert out.shape == (H, W, 3)
    np.testing.assert_allclose(out[62, 10], _blend([70, 130, 180]), atol=1)  # stuff: exact class colour
    a, b = out[12, 7].astype(int), out[12, 57].astype(int)  # two persons: jittered, hence different
    assert np.abs(a - b).sum() > 10
    assert np.abs(a - _blend([220, 20, 60])).sum() > 10
    assert (out[92:, :] == GREY).all() and (out[:, 122:] == GREY).all()  # void (id 0)
    # each thing gets a label on a dark box near its centre
    for x0 in (5, 55):
        region = out[20:40, x0 + 5:x0 + 35].astype(int)
        assert (region.sum(-1) < out[12, x0 + 2].astype(int).sum() - 60).sum() > 20


def test_panoptic_segments_missing_from_info_are_void():
    pan = np.zeros((H, W), np.int32)
    pan[10:50, 5:45] = 1
    pan[60:90, 5:120] = 3
    info = [{"id": 3, "category_id": 2, "isthing": False}]
    out = Visualizer(_image(), _panoptic_metadata()).draw_panoptic_seg(pan, info).get_image()
    assert (out[12:48, 7:43] == GREY).all()


def test_panoptic_detectron2_metadata_convention():
    # Detectron2 convention: separate lists, thing ids index thing_classes/thing_colors.
    md = types.SimpleNamespace(stuff_classes=["things", "sky"], stuff_colors=[[0, 0, 0], [70, 130, 180]],
                               thing_classes=["person"], thing_colors=[[220, 20, 60]])
    vis = Visualizer(_image(), md)
    assert vis._segment_name_color(0, True)[0] == "person"
    assert vis._segment_name_color(1, False)[0] == "sky"
    vis2 = Visualizer(_image(), _panoptic_metadata())
    assert vis2._segment_name_color(2, False)[0] == "sky" and vis2._segment_name_color(1, True)[0] == "car"


# ------------------------------------------------------------------ instances
def test_instances_masks_boxes_labels():
    inst = _instances()
    out = Visualizer(_image(), _panoptic_metadata()).draw_instance_predictions(inst).get_image()
    assert out.shape == (H, W, 3)
    # mask interior is blended (changed, and equal across the interior away from the label)
    interior = out[60:68, 20:45].reshape(-1, 3)
    assert (interior != GREY).any(-1).all() and (interior == interior[0]).all()
    # alpha 0.5 blend: the colour is recoverable as 2 * pixel - grey and lies in the palette
    color = 2 * interior[0].astype(int) - GREY
    assert np.abs(colormap(rgb=True) - color).sum(-1).min() <= 3
    # the box outline of instance 1 is drawn in its colour on its right edge, outside the mask
    col_right = out[45:75, 120]
    assert (np.abs(col_right.astype(int) - (2 * out[60, 100].astype(int) - GREY)).sum(-1) <= 3).sum() > 20
    # a label box above instance 1 (top edge y=40): pixels just above the box are changed
    assert (out[28:40, 70:100] != GREY).any(-1).sum() > 50


def test_instances_segmentation_mode_uses_jittered_class_colors():
    inst = _instances()
    inst.remove("pred_boxes")
    out = Visualizer(_image(), _panoptic_metadata(), instance_mode=ColorMode.SEGMENTATION) \
        .draw_instance_predictions(inst).get_image()
    px = out[32, 12].astype(float)  # alpha 0.8
    color = (px - 0.2 * GREY) / 0.8
    # jittered: near but not equal to the class colour; norm of the jitter is 0.35 * 255
    dist = np.linalg.norm(np.clip(color, 0, 255) - np.array([220, 20, 60]))
    assert 5 < dist < 0.35 * 255 + 5


def test_instances_image_bw_greys_background():
    img = _image()
    img[..., 0] = 200  # coloured background
    out = Visualizer(img, _panoptic_metadata(), instance_mode=ColorMode.IMAGE_BW) \
        .draw_instance_predictions(_instances()).get_image()
    bg = out[2, 2]
    assert bg[0] == bg[1] == bg[2]


# ------------------------------------------------------------------ video visualizer
def test_video_visualizer_keeps_instance_colors_across_frames():
    pan = np.zeros((H, W), np.int32)
    pan[10:50, 5:45] = 1
    pan[50:90, 60:110] = 2
    info = [{"id": 1, "category_id": 0, "isthing": True}, {"id": 2, "category_id": 0, "isthing": True}]
    vv = VideoVisualizer(_panoptic_metadata())
    f1 = vv.draw_panoptic_seg(_image(), pan, info).get_image()
    pan2 = np.roll(pan, 2, axis=1)  # objects move by 2 px: IoU stays high
    f2 = vv.draw_panoptic_seg(_image(), pan2, info).get_image()
    np.testing.assert_array_equal(f1[12, 8], f2[12, 10])
    np.testing.assert_array_equal(f1[88, 62], f2[88, 64])
    assert not np.array_equal(f1[12, 8], f1[88, 62])
    # a fresh visualizer with another seed gives another colour: the match, not the seed, kept it
    f3 = VideoVisualizer(_panoptic_metadata(), seed=5).draw_panoptic_seg(_image(), pan, info).get_image()
    assert not np.array_equal(f1[12, 8], f3[12, 8])


# ------------------------------------------------------------------ video I/O
def _frames(n=8, h=24, w=32):
    out = []
    for i in range(n):
        f = np.zeros((h, w, 3), np.uint8)
        f[:, : (i + 1) * w // n] = (40 * (i % 6), 255 - 30 * i, 128)
        out.append(f)
    return out


@pytest.mark.parametrize("name", ["clip.mp4", "clip.avi"])
def test_video_round_trip(tmp_path, name):
    frames = _frames()
    path = str(tmp_path / "sub" / name)
    with VideoWriter(path, fps=12.0, frame_size=(32, 24)) as writer:
        for f in frames:
            writer.write(f)
    assert writer.path == path and writer.num_frames == 8
    cap = open_video(path)
    info = get_video_info(cap)
    cap.release()
    assert (info.width, info.height, info.num_frames) == (32, 24, 8)
    assert info.fps == pytest.approx(12.0)
    read = list(iter_frames(path))
    assert len(read) == 8 and all(r.shape == (24, 32, 3) for r in read)
    # lossy codecs, but the half-filled frame is recognisable
    assert np.abs(read[3].astype(int) - frames[3].astype(int)).mean() < 20
    assert len(list(iter_frames(path, max_frames=3))) == 3


def test_video_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        open_video(str(tmp_path / "missing.mp4"))
    bad = tmp_path / "not_a_video.mp4"
    bad.write_bytes(b"this is not a video")
    with pytest.raises(OSError, match="not_a_video.mp4"):
        open_video(str(bad))
    with pytest.raises(ValueError, match="clip.xyz"):
        VideoWriter(str(tmp_path / "clip.xyz"), 10, (32, 24))
    with VideoWriter(str(tmp_path / "clip.mp4"), 10, (32, 24)) as writer:
        with pytest.raises(ValueError, match=r"expected uint8 \(24, 32, 3\)"):
            writer.write(np.zeros((24, 30, 3), np.uint8))


def test_video_writer_unwritable_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running with permissions that ignore folder modes")
        with pytest.raises(OSError, match="ro"):
            VideoWriter(str(folder / "clip.mp4"), 10, (32, 24))
    finally:
        os.chmod(folder, 0o700)
