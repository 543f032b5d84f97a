"""Test-time augmentation: DatasetMapperTTA, SemanticSegmentorWithTTA and train_net.py with
TEST.AUG.ENABLED (multi-scale + flip inference of MaskFormer, paper Sec. 4).

The unit tests use the test-only ``StubConvSegmentor`` (one fixed random 3x3 convolution, output
resized to the input's height x width); the end-to-end tests use a tiny MaskFormer on generated
data.
"""
import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
from PIL import Image
from torch import nn

from segcore.config import get_cfg
from segcore.data.transforms import HFlipTransform, ResizeShortestEdge, ResizeTransform
from segcore.modeling import DatasetMapperTTA, SemanticSegmentorWithTTA
# the tiny MaskFormer config and the generated-dataset fixture of the MaskFormer end-to-end test
from tests.e2e_utils import MASKFORMER_QUICKSTART as CONFIG
from tests.e2e_utils import TINY_MASKFORMER as TINY
from tests.e2e_utils import load_script, read_metrics
from tests.stub_meta_arch import StubConvSegmentor

H, W = 24, 32
NUM_CLASSES = 4


def _cfg(min_sizes=(H,), max_size=1000, flip=True, fmt="BGR"):
    cfg = get_cfg()
    cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES = NUM_CLASSES
    cfg.MODEL.PIXEL_MEAN = [128.0, 128.0, 128.0]
    cfg.MODEL.PIXEL_STD = [64.0, 64.0, 64.0]
    cfg.INPUT.FORMAT = fmt
    cfg.TEST.AUG.MIN_SIZES = tuple(min_sizes)
    cfg.TEST.AUG.MAX_SIZE = max_size
    cfg.TEST.AUG.FLIP = flip
    return cfg


def _stub(symmetric=False):
    """The stub model in eval mode; ``symmetric``: its kernel made left-right symmetric, so the
    model commutes with horizontal flips."""
    model = StubConvSegmentor(_cfg()).eval()
    if symmetric:
        with torch.no_grad():
            model.conv.weight.copy_((model.conv.weight + model.conv.weight.flip(-1)) / 2)
    return model


class _Recorder(nn.Module):
    """Calls ``model`` and records the (C, H, W) shape of every image and the batch sizes."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.images, self.batch_sizes = [], []

    def forward(self, batched_inputs):
        self.batch_sizes.append(len(batched_inputs))
        self.images.extend(x["image"].clone() for x in batched_inputs)
        return self.model(batched_inputs)


def _image(seed=0, h=H, w=W, symmetric=False):
    img = torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (3, h, w), dtype=np.uint8))
    if symmetric:
        img = torch.cat([img[:, :, : w // 2], img[:, :, : w // 2].flip(-1)], dim=2)
        assert torch.equal(img, img.flip(-1))
    return img


def _plain(model, img, **kwargs):
    with torch.no_grad():
        return model([{"image": img, "height": img.shape[1], "width": img.shape[2], **kwargs}])[0]["sem_seg"]


def _tta(model, img, batch_size=1, **cfg_kwargs):
    tta = SemanticSegmentorWithTTA(_cfg(**cfg_kwargs), model, batch_size=batch_size)
    out = tta([{"image": img, "height": img.shape[1], "width": img.shape[2]}])
    assert len(out) == 1 and set(out[0]) == {"sem_seg"}
    return out[0]["sem_seg"]


# ------------------------------------------------------------------ flip averaging
def test_flip_only_equals_plain_output_for_a_mirror_symmetric_model_and_image():
    model, img = _stub(symmetric=True), _image(symmetric=True)
    out = _tta(model, img, flip=True)
    assert out.dtype == torch.float32 and out.shape == (NUM_CLASSES, H, W)
    torch.testing.assert_close(out, _plain(model, img), rtol=1e-5, atol=1e-6)


def test_flip_averaging_is_exact_and_changes_an_asymmetric_model_output():
    model = _stub()
    img = _image()
    plain = _plain(model, img)
    unflipped_back = _plain(model, img.flip(-1)).flip(-1)
    out = _tta(model, img, flip=True)
    torch.testing.assert_close(out, (plain + unflipped_back) / 2)
    assert (out - plain).abs().max() > 1e-3  # the stub's kernel is not mirror symmetric
    # on a symmetric image the asymmetric model's average is mirror symmetric, its plain output is not
    sym = _image(symmetric=True)
    out_sym, plain_sym = _tta(model, sym, flip=True), _plain(model, sym)
    torch.testing.assert_close(out_sym, out_sym.flip(-1))
    assert (plain_sym - plain_sym.flip(-1)).abs().max() > 1e-3
    # without FLIP, a single size equal to the input's is the plain output
    torch.testing.assert_close(_tta(model, img, flip=False), plain)


# ------------------------------------------------------------------ passes and sizes
@pytest.mark.parametrize("flip", [False, True])
def test_one_forward_pass_per_size_and_flip_at_the_right_size(flip):
    min_sizes, max_size = (16, 24, 40), 48  # 40 would make the longer edge 53: capped at 48
    rec = _Recorder(_stub()).eval()
    out = _tta(rec, _image(), min_sizes=min_sizes, max_size=max_size, flip=flip)
    assert out.shape == (NUM_CLASSES, H, W)
    expected = [(16, 21), (24, 32), (36, 48)]
    assert expected == [ResizeShortestEdge.get_output_shape(H, W, s, max_size) for s in min_sizes]
    per_size = 2 if flip else 1
    assert len(rec.images) == len(min_sizes) * per_size == len(rec.batch_sizes)
    assert [tuple(x.shape) for x in rec.images] == [(3, *hw) for hw in expected for _ in range(per_size)]
    assert all(x.dtype == torch.uint8 for x in rec.images)
    if flip:
        for unflipped, flipped in zip(rec.images[::2], rec.images[1::2]):
            assert torch.equal(flipped, unflipped.flip(-1))


def test_batch_size_groups_the_augmented_images_without_changing_the_result():
    rec = _Recorder(_stub()).eval()
    img = _image()
    out = _tta(rec, img, batch_size=4, min_sizes=(16, 24, 40), flip=True)
    assert rec.batch_sizes == [4, 2]
    torch.testing.assert_close(out, _tta(_stub(), img, batch_size=1, min_sizes=(16, 24, 40), flip=True))
    with pytest.raises(ValueError, match="batch_size"):
        SemanticSegmentorWithTTA(_cfg(), _stub(), batch_size=0)


def test_multi_scale_is_the_mean_of_the_single_scales():
    model, img = _stub(), _image()
    single = [_tta(model, img, min_sizes=(s,), flip=False) for s in (12, 24, 48)]
    multi = _tta(model, img, min_sizes=(12, 24, 48), flip=False)
    torch.testing.assert_close(multi, sum(single) / 3)
    assert (single[0] - single[1]).abs().max() > 1e-3  # the scale matters for this model
    assert (multi - single[1]).abs().max() > 1e-3


def test_outputs_are_at_the_requested_height_and_width():
    # the loader gave a resized image (12 x 16) of a 48 x 64 original
    model, img = _stub(), _image(h=12, w=16)
    tta = SemanticSegmentorWithTTA(_cfg(min_sizes=(12, 20), flip=True), model)
    out = tta([{"image": img, "height": 48, "width": 64}, {"image": _image(1)}])
    assert out[0]["sem_seg"].shape == (NUM_CLASSES, 48, 64)
    assert out[1]["sem_seg"].shape == (NUM_CLASSES, H, W)  # no height / width: the image's size


# ------------------------------------------------------------------ inputs, wrapping and errors
@pytest.mark.parametrize("fmt", ["RGB", "BGR"])
def test_reads_file_name_in_the_config_input_format(tmp_path, fmt):
    rgb = _image().permute(1, 2, 0).numpy()
    path = str(tmp_path / "img.png")
    Image.fromarray(rgb).save(path)
    model = _stub()
    tta = SemanticSegmentorWithTTA(_cfg(flip=True, fmt=fmt), model)
    out = tta([{"file_name": path}])[0]["sem_seg"]
    in_format = rgb if fmt == "RGB" else rgb[:, :, ::-1]
    expected_image = torch.from_numpy(np.ascontiguousarray(in_format.transpose(2, 0, 1)))
    torch.testing.assert_close(out, tta([{"image": expected_image}])[0]["sem_seg"])
    with pytest.raises(KeyError, match="file_name"):
        tta([{"height": H, "width": W}])


def test_unwraps_distributed_data_parallel():
    started = not dist.is_initialized()
    if started:
        dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        model = _stub()
        tta = SemanticSegmentorWithTTA(_cfg(), nn.parallel.DistributedDataParallel(model))
        assert tta.model is model
    finally:
        if started:
            dist.destroy_process_group()


class _PanopticOnly(nn.Module):
    def forward(self, batched_inputs):
        return [{"panoptic_seg": (torch.zeros(x["height"], x["width"], dtype=torch.int32), [])} for x in batched_inputs]


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="semantic segmentation only"):
        SemanticSegmentorWithTTA(_cfg(), _PanopticOnly().eval())([{"image": _image()}])

    class WrongSize(nn.Module):
        def forward(self, batched_inputs):
            return [{"sem_seg": torch.zeros(NUM_CLASSES, *x["image"].shape[1:])} for x in batched_inputs]

    with pytest.raises(ValueError, match="height x width"):
        SemanticSegmentorWithTTA(_cfg(min_sizes=(12,)), WrongSize().eval())([{"image": _image()}])
    with pytest.raises(RuntimeError, match="eval"):
        SemanticSegmentorWithTTA(_cfg(), _stub().train())([{"image": _image()}])


# ------------------------------------------------------------------ the mapper
def test_dataset_mapper_tta_from_config_and_explicit():
    mapper = DatasetMapperTTA(_cfg(min_sizes=(16, 40), max_size=48, flip=True))
    assert (mapper.min_sizes, mapper.max_size, mapper.flip, len(mapper)) == ((16, 40), 48, True, 4)
    img = _image(h=12, w=16)
    out = mapper({"image": img, "height": 48, "width": 64, "file_name": "x.jpg"})
    assert [tuple(d["image"].shape) for d in out] == [(3, 16, 21), (3, 16, 21), (3, 36, 48), (3, 36, 48)]
    assert all(d["file_name"] == "x.jpg" and d["height"] == 48 for d in out)
    # the transforms go from the 48 x 64 original to each image; the flipped copies end with a flip
    for i, d in enumerate(out):
        first, *_, last = d["transforms"].transforms
        assert isinstance(first, ResizeTransform) and (first.h, first.w, first.new_h, first.new_w) == (48, 64, 12, 16)
        assert isinstance(last, HFlipTransform) == (i % 2 == 1)
    single = DatasetMapperTTA(min_sizes=[32], max_size=100, flip=False)({"image": img, "height": 12, "width": 16})
    assert len(single) == 1 and tuple(single[0]["image"].shape) == (3, 32, 43)
    for bad in ({"min_sizes": [], "max_size": 10, "flip": True}, {"min_sizes": [0], "max_size": 10, "flip": True},
                {"min_sizes": [8], "max_size": -1, "flip": True}):
        with pytest.raises(ValueError, match="DatasetMapperTTA"):
            DatasetMapperTTA(**bad)


# ------------------------------------------------------------------ train_net.py
TTA_OPTS = ["TEST.AUG.ENABLED", "True", "TEST.AUG.MIN_SIZES", "(32, 48)", "TEST.AUG.MAX_SIZE", "256",
            "TEST.AUG.FLIP", "True", "INPUT.MIN_SIZE_TEST", "32"]


def _train_net(quickstart_root, tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(quickstart_root))
    return load_script("train_net", "train_net.py"), str(tmp_path / "out")


def test_train_net_eval_only_returns_plain_and_tta_results(quickstart_root, tmp_path, monkeypatch):
    train_net, out = _train_net(quickstart_root, tmp_path, monkeypatch)
    # an untrained model is enough to check the plumbing; evaluating it must be asked for explicitly
    results = train_net.cli(["--config-file", CONFIG, "--eval-only", "OUTPUT_DIR", out, *TINY, *TTA_OPTS,
                             "MODEL.ALLOW_PARTIAL_WEIGHTS", "True"])
    assert set(results) == {"sem_seg", "sem_seg_TTA"}
    for task in results.values():
        assert set(task) >= {"mIoU", "fwIoU", "mACC", "pACC"} and 0.0 <= task["mIoU"] <= 100.0
    assert os.path.isdir(os.path.join(out, "inference_TTA"))


@pytest.fixture
def flush_denormals():
    """On CPU, the tiny MaskFormer's inference right after a training step meets denormal floats and
    runs about 50 times slower (seconds per image); flushing them to zero keeps this test fast."""
    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)


def test_train_net_evaluates_with_tta_after_training(quickstart_root, tmp_path, monkeypatch,
                                                     flush_denormals):
    train_net, out = _train_net(quickstart_root, tmp_path, monkeypatch)
    results = train_net.cli(["--config-file", CONFIG, "OUTPUT_DIR", out, *TINY, *TTA_OPTS, "SOLVER.MAX_ITER", "1"])
    # the plain evaluation, then the TTA one: both returned and written to metrics.json
    assert set(results) == {"sem_seg", "sem_seg_TTA"}
    last = read_metrics(out)[-1]
    assert "sem_seg/mIoU" in last and "sem_seg_TTA/mIoU" in last


def test_tta_is_refused_up_front_for_a_model_with_other_outputs(mf_cfg):
    from segcore.engine import DefaultTrainer

    mf_cfg.MODEL.META_ARCHITECTURE = "MaskFormer"
    mf_cfg.MODEL.MASK_FORMER.TEST.PANOPTIC_ON = True
    with pytest.raises(ValueError, match="semantic segmentation only.*panoptic_seg"):
        DefaultTrainer.check_test_with_TTA(mf_cfg)
    mf_cfg.MODEL.MASK_FORMER.TEST.PANOPTIC_ON = False
    DefaultTrainer.check_test_with_TTA(mf_cfg)  # semantic only: accepted
