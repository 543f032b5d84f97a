"""Inference precision (TEST.PRECISION), AMP precision (SOLVER.AMP.PRECISION) and torch.compile
(TEST.COMPILE, SOLVER.COMPILE, compile_model) in DefaultPredictor, inference_on_dataset,
DefaultTrainer and its test path."""
import os

import numpy as np
import pytest
import torch

from segcore.engine import AMPTrainer, DefaultPredictor, SimpleTrainer, compile_model, setup_cfg
from segcore.evaluation import inference_on_dataset
from segcore.utils.precision import inference_precision, precision_dtype
from tests.paths import CONFIGS
from tests.segcore.engine.test_train import ToyTrainer, _batch, _cfg, _toy_model

TINY = ["MODEL.SEM_SEG_HEAD.CONVS_DIM", "32", "MODEL.SEM_SEG_HEAD.MASK_DIM", "32", "MODEL.MASK_FORMER.HIDDEN_DIM", "32",
        "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", "10", "MODEL.MASK_FORMER.DIM_FEEDFORWARD", "64",
        "MODEL.MASK_FORMER.NHEADS", "4", "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS", "1", "INPUT.MIN_SIZE_TEST", "0",
        "MODEL.WEIGHTS", "", "MODEL.ALLOW_PARTIAL_WEIGHTS", "True", "MODEL.DEVICE", "cpu"]


@pytest.fixture
def eager_compile(monkeypatch):
    """torch.compile with the eager backend: the wiring is tested, not inductor (slow to compile)."""
    calls = []
    real = torch.compile

    def compile_eagerly(model, **kwargs):
        calls.append(getattr(model, "__self__", model))  # nn.Module.compile passes its bound _call_impl
        return real(model, **{**kwargs, "backend": "eager"})

    monkeypatch.setattr(torch, "compile", compile_eagerly)
    torch._dynamo.reset()
    yield calls
    torch._dynamo.reset()


def test_precision_names():
    assert precision_dtype("bf16") is precision_dtype("bfloat16") is torch.bfloat16
    assert precision_dtype("fp16") is torch.float16 and precision_dtype("float32") is torch.float32
    assert precision_dtype(torch.bfloat16) is torch.bfloat16
    with pytest.raises(ValueError, match="unknown precision"):
        precision_dtype("int8")
    with pytest.raises(ValueError, match="float32, bfloat16 or float16"):
        precision_dtype(torch.float64)


def test_inference_precision_contexts():
    with inference_precision("float32", "cpu"):
        assert not torch.is_autocast_enabled("cpu")
    with inference_precision("bf16", "cpu"):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    with pytest.raises(ValueError, match="CUDA only"):
        inference_precision("float16", "cpu")


def _predictor(precision="float32", *opts, config="quickstart/mask2former_R18_quickstart.yaml"):
    cfg = setup_cfg(os.path.join(CONFIGS, *config.split("/")), TINY + ["TEST.PRECISION", precision, *opts])
    torch.manual_seed(0)
    return DefaultPredictor(cfg)


@pytest.mark.parametrize("config", ["quickstart/maskformer_R18_quickstart.yaml",
                                    "quickstart/mask2former_panoptic_R18_quickstart.yaml"])
def test_predictor_in_bfloat16_is_close_to_float32(config):
    image = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    fp32 = _predictor("float32", config=config)(image)
    predictor = _predictor("bfloat16", config=config)
    seen = []
    predictor.model.backbone.register_forward_hook(lambda m, i, o: seen.append(
        (torch.is_autocast_enabled("cpu"), torch.is_inference_mode_enabled())))
    bf16 = predictor(image)
    assert seen == [(True, True)]  # the network under bfloat16 autocast, in inference mode
    assert set(bf16) == set(fp32)
    assert bf16["sem_seg"].dtype == torch.float32  # the post-processing runs in float32
    torch.testing.assert_close(bf16["sem_seg"], fp32["sem_seg"], atol=0.1, rtol=0.1)
    assert (bf16["sem_seg"].argmax(0) == fp32["sem_seg"].argmax(0)).float().mean() > 0.8
    if "panoptic_seg" in fp32:
        assert bf16["panoptic_seg"][0].dtype == torch.int32


def test_predictor_refuses_float16_on_the_cpu():
    with pytest.raises(ValueError, match="CUDA only"):
        _predictor("float16")


def test_predictor_compiles_with_test_compile(eager_compile):
    image = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    eager = _predictor("float32")
    compiled = _predictor("float32", "TEST.COMPILE", "True")
    assert len(eager_compile) == 2  # backbone and sem_seg_head, in place
    assert list(compiled.model.state_dict()) == list(eager.model.state_dict())
    torch.testing.assert_close(compiled(image)["sem_seg"], eager(image)["sem_seg"], rtol=1e-5, atol=1e-5)


def test_compile_model_in_place_and_as_a_copy(eager_compile):
    cfg = setup_cfg(os.path.join(CONFIGS, "quickstart", "maskformer_R18_quickstart.yaml"), TINY)
    from segcore.modeling import build_model

    torch.manual_seed(0)
    model = build_model(cfg).eval()
    inputs = [{"image": torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)}]
    with torch.no_grad():
        expected = model(inputs)[0]["sem_seg"]
        twin = compile_model(model, inplace=False)
        assert twin is not model and twin.backbone is not model.backbone
        assert twin.backbone._orig_mod is model.backbone  # the same parameters
        assert getattr(model.backbone, "_compiled_call_impl", None) is None  # the model stays eager
        torch.testing.assert_close(twin(inputs)[0]["sem_seg"], expected, rtol=1e-5, atol=1e-5)
        assert compile_model(model) is model
        assert model.backbone._compiled_call_impl is not None
        torch.testing.assert_close(model(inputs)[0]["sem_seg"], expected, rtol=1e-5, atol=1e-5)
    assert len(eager_compile) == 4


def test_inference_on_dataset_precision():
    model = _toy_model()
    inference_on_dataset(model, [_batch(1)], None, precision="bfloat16")
    assert model.autocast_seen == [torch.bfloat16]
    inference_on_dataset(model, [_batch(1)], None)
    assert model.autocast_seen[-1] is False
    with pytest.raises(ValueError, match="CUDA only"):
        inference_on_dataset(model, [_batch(1)], None, precision="float16")


def _toy_trainer_cfg(tmp_path, *opts):
    cfg = _cfg(tmp_path)
    cfg.defrost()
    cfg.merge_from_list(list(opts))
    cfg.freeze()
    return cfg


def test_trainer_amp_precision_from_the_config(tmp_path):
    trainer = ToyTrainer(_toy_trainer_cfg(tmp_path, "SOLVER.AMP.ENABLED", "True", "SOLVER.AMP.PRECISION", "bfloat16"))
    assert isinstance(trainer._trainer, AMPTrainer) and trainer._trainer.precision == torch.bfloat16
    assert trainer._trainer.autocast_enabled
    trainer.train()
    assert set(trainer.model.autocast_seen[:2]) == {torch.bfloat16}
    plain = ToyTrainer(_toy_trainer_cfg(tmp_path / "b"))
    assert type(plain._trainer) is SimpleTrainer


def test_amp_trainer_takes_a_precision_name():
    model = _toy_model()
    trainer = AMPTrainer(model, [_batch(0)], torch.optim.SGD(model.parameters(), lr=0.1), precision="bf16")
    assert trainer.precision == torch.bfloat16
    with pytest.raises(ValueError, match="float16 or torch.bfloat16"):
        AMPTrainer(model, [_batch(0)], torch.optim.SGD(model.parameters(), lr=0.1), precision="float32")


def test_trainer_compiles_with_solver_compile(tmp_path, eager_compile):
    trainer = ToyTrainer(_toy_trainer_cfg(tmp_path, "SOLVER.COMPILE", "True", "SOLVER.MAX_ITER", "2",
                                          "TEST.EVAL_PERIOD", "0"))
    assert [m is trainer.model.backbone for m in eager_compile] == [True]  # the toy has no sem_seg_head
    assert trainer.model.backbone._compiled_call_impl is not None
    trainer.train()


def test_test_path_precision_and_compiled_copy(tmp_path, eager_compile):
    cfg = _toy_trainer_cfg(tmp_path, "TEST.PRECISION", "bfloat16", "TEST.COMPILE", "True")
    model = _toy_model()
    results = ToyTrainer.test(cfg, model)
    assert results  # the evaluator ran
    assert model.autocast_seen and set(model.autocast_seen) == {torch.bfloat16}
    assert len(eager_compile) == 1 and getattr(model.backbone, "_compiled_call_impl", None) is None
