"""segcore.benchmark.settings: what a run may be asked, and the config it measures."""
import pytest

from segcore.benchmark import BenchmarkSettings, benchmark_config
from tests.segcore.benchmark.tiny_configs import M2F


@pytest.mark.parametrize("kwargs,message", [
    ({"iters": 0}, ">= 1"), ({"warmup": 0}, ">= 1"), ({"batch_size": 0}, ">= 1"),
    ({"precision": "fp16"}, "fp16 needs --device cuda"), ({"precision": "int8"}, "precision 'int8'"),
])
def test_what_cannot_be_measured(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BenchmarkSettings(**kwargs)


def test_settings_are_keyword_only():
    with pytest.raises(TypeError):
        BenchmarkSettings("cpu")


def test_the_config_has_random_weights_and_the_settings():
    settings = BenchmarkSettings(precision="bf16", compile=True, batch_size=3)
    cfg = benchmark_config(M2F, settings, opts=["MODEL.SEM_SEG_HEAD.NUM_CLASSES", "7"])
    assert cfg.MODEL.WEIGHTS == "" and cfg.MODEL.ALLOW_PARTIAL_WEIGHTS is True and cfg.MODEL.DEVICE == "cpu"
    assert cfg.TEST.PRECISION == "bfloat16" and cfg.TEST.COMPILE is True and cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES == 7
    default_batch = cfg.SOLVER.IMS_PER_BATCH
    train = benchmark_config(M2F, settings, train=True, weights="w.pth")
    assert train.SOLVER.COMPILE is True and train.SOLVER.IMS_PER_BATCH == 3 != default_batch
    assert train.MODEL.WEIGHTS == "w.pth" and train.MODEL.ALLOW_PARTIAL_WEIGHTS is False
