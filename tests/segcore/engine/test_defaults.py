"""Command line, default_setup, DefaultPredictor, event storage and writers, csv printing."""
import json
import logging

import numpy as np
import pytest
import torch
from torch import nn

from segcore.checkpoint import Checkpointer
from segcore.config import get_cfg
from segcore.engine import DefaultPredictor, default_argument_parser, default_setup
from segcore.evaluation import print_csv_format
from segcore.modeling import META_ARCH_REGISTRY
from segcore.utils.events import EventStorage, JSONWriter, get_event_storage


def test_argument_parser():
    args = default_argument_parser().parse_args(
        ["--config-file", "x.yaml", "--resume", "--num-gpus", "2", "SOLVER.BASE_LR", "0.1", "OUTPUT_DIR", "out"]
    )
    assert args.config_file == "x.yaml" and args.resume and not args.eval_only
    assert args.num_gpus == 2 and args.num_machines == 1 and args.machine_rank == 0
    assert args.opts == ["SOLVER.BASE_LR", "0.1", "OUTPUT_DIR", "out"]
    assert args.dist_url.startswith("tcp://127.0.0.1:")
    port = int(args.dist_url.rsplit(":", 1)[1])
    assert 2**15 <= port < 2**16
    assert default_argument_parser().parse_args([]).opts == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback when CUDA is absent")
def test_default_setup_on_cpu_with_frozen_cuda_config(tmp_path):
    cfg = get_cfg()
    cfg.OUTPUT_DIR = str(tmp_path / "out")
    cfg.SEED = 7
    cfg.MODEL.DEVICE = "cuda"
    cfg.freeze()
    args = default_argument_parser().parse_args(["--eval-only"])
    default_setup(cfg, args)
    assert cfg.MODEL.DEVICE == "cpu" and cfg.is_frozen()
    saved = get_cfg()
    saved.merge_from_file(str(tmp_path / "out" / "config.yaml"))
    assert saved.SEED == 7 and saved.MODEL.DEVICE == "cpu"
    log = (tmp_path / "out" / "log.txt").read_text()
    assert "CUDA is not available" in log and "Full config saved" in log
    # seeded with SEED + rank
    a = torch.rand(3)
    torch.manual_seed(7)
    assert torch.equal(a, torch.rand(3))


@META_ARCH_REGISTRY.register()
class ToyPredictorSegmentor(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.conv = nn.Conv2d(3, cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES, 1)
        self.last_inputs = None

    def forward(self, batched_inputs):
        assert not self.training
        self.last_inputs = batched_inputs
        return [{"sem_seg": self.conv(x["image"].float()[None])[0]} for x in batched_inputs]


def test_default_predictor(tmp_path):
    cfg = get_cfg()
    cfg.MODEL.META_ARCHITECTURE = "ToyPredictorSegmentor"
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES = 2
    cfg.INPUT.FORMAT = "RGB"
    cfg.INPUT.MIN_SIZE_TEST = 16
    cfg.INPUT.MAX_SIZE_TEST = 64
    source = ToyPredictorSegmentor(cfg)
    with torch.no_grad():
        source.conv.weight.fill_(0.25)
        source.conv.bias.copy_(torch.tensor([1.0, -1.0]))
    Checkpointer(source, str(tmp_path), save_to_disk=True).save("model_final")
    cfg.MODEL.WEIGHTS = str(tmp_path / "model_final.pth")

    predictor = DefaultPredictor(cfg)
    assert not predictor.model.training
    bgr = np.zeros((8, 12, 3), dtype=np.uint8)
    bgr[..., 0], bgr[..., 1], bgr[..., 2] = 10, 20, 30  # B, G, R
    out = predictor(bgr)

    (inp,) = predictor.model.last_inputs
    assert inp["height"] == 8 and inp["width"] == 12
    image = inp["image"]
    assert image.dtype == torch.uint8 and tuple(image.shape) == (3, 16, 24)  # shorter edge -> 16
    assert image[:, 5, 5].tolist() == [30, 20, 10]  # converted to RGB
    # weights were loaded: 0.25 * (30 + 20 + 10) + bias
    assert out["sem_seg"][:, 0, 0].tolist() == pytest.approx([16.0, 14.0])

    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        predictor(np.zeros((8, 12), dtype=np.uint8))


def test_event_storage_and_json_writer(tmp_path):
    with pytest.raises(RuntimeError, match="EventStorage"):
        get_event_storage()
    path = tmp_path / "metrics.json"
    writer = JSONWriter(str(path), window_size=3)
    with EventStorage(start_iter=0) as storage:
        assert get_event_storage() is storage
        for it, loss in enumerate([4.0, 1.0, 2.0, 8.0]):
            storage.iter = it
            storage.put_scalar("loss", loss)
            storage.put_scalar("lr", 0.1 * (it + 1), smoothing_hint=False)
            if it == 1:
                writer.write()
        storage.put_scalars(acc=0.5, smoothing_hint=False)
        writer.write()
        writer.write()  # nothing new: nothing written
        hist = storage.history("loss")
        assert hist.median(3) == 2.0 and hist.avg(2) == 5.0 and hist.latest() == 8.0 and hist.global_avg() == 3.75
        with pytest.raises(ValueError, match="smoothing_hint"):
            storage.put_scalar("lr", 1.0)
        with pytest.raises(KeyError, match="nope"):
            storage.history("nope")
        with storage.name_scope("val"):
            storage.put_scalar("x", 1)
        assert "val/x" in storage.histories()
    writer.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [
        {"iteration": 1, "loss": 2.5, "lr": pytest.approx(0.2)},  # median of [4, 1]
        {"iteration": 3, "loss": 2.0, "lr": pytest.approx(0.4), "acc": 0.5},  # median of [1, 2, 8]
    ]


def test_print_csv_format():
    logger = logging.getLogger("segcore.evaluation.testing")
    messages = []

    class _H(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    h = _H()
    logger.addHandler(h)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        print_csv_format({"sem_seg": {"mIoU": 41.23456, "IoU-wall": 1.0, "pACC": 80.0}, "note": 3})
    finally:
        logger.removeHandler(h)
        logger.setLevel(old)
    assert messages == [
        "copypaste: Task: sem_seg",
        "copypaste: mIoU,pACC",
        "copypaste: 41.2346,80.0000",
        "copypaste: note=3",
    ]
    with pytest.raises(TypeError):
        print_csv_format([1, 2])
