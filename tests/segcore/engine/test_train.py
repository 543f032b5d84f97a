"""DefaultTrainer / SimpleTrainer / AMPTrainer on a toy model: train, checkpoint, resume, metrics."""
import glob
import json
import logging
import os
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segcore.config import get_cfg
from segcore.engine import AMPTrainer, DefaultTrainer, HookBase, SimpleTrainer, hooks
from segcore.evaluation import DatasetEvaluator
from segcore.modeling import META_ARCH_REGISTRY

NUM_CLASSES = 3


@META_ARCH_REGISTRY.register()
class ToyTrainSegmentor(nn.Module):
    """1x1 convs; training returns a loss dict, eval a list of {"sem_seg": (K, H, W)}."""

    def __init__(self, cfg):
        super().__init__()
        self.backbone = nn.Conv2d(3, 4, 1)
        self.norm = nn.GroupNorm(2, 4)
        self.predictor = nn.Conv2d(4, cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES, 1)
        self.register_buffer("pixel_mean", torch.tensor([128.0, 128.0, 128.0]).view(-1, 1, 1), False)
        self.autocast_seen = []
        self.draws = []

    def forward(self, batched_inputs):
        self.autocast_seen.append(torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu"))
        device = self.pixel_mean.device
        images = torch.stack([(x["image"].to(device).float() - self.pixel_mean) / 64.0 for x in batched_inputs])
        logits = self.predictor(F.relu(self.norm(self.backbone(images))))
        if self.training:
            targets = torch.stack([x["sem_seg"] for x in batched_inputs]).to(device)
            # randomness in the training step (as dropout or point sampling): what each iteration draws
            noise = torch.rand(())
            self.draws.append(float(noise))
            return {
                "loss_sem_seg": F.cross_entropy(logits.float(), targets, ignore_index=255),
                "loss_reg": 0.01 * (1 + noise) * logits.float().pow(2).mean(),
            }
        return [{"sem_seg": x.softmax(0)} for x in logits]


def _batch(seed, n=2, size=8):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        sem_seg = torch.randint(0, NUM_CLASSES, (size, size), generator=g)
        sem_seg[0, :2] = 255
        image = torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8)
        image[sem_seg.clamp(max=2).repeat(3, 1, 1) == 1] //= 2  # a learnable signal
        out.append({"image": image, "sem_seg": sem_seg, "height": size, "width": size})
    return out


class _Forever:
    """The same batch forever (so a resumed run sees the same data as an uninterrupted one)."""

    def __init__(self, batch):
        self.batch = batch

    def __iter__(self):
        while True:
            yield self.batch


class _PixelAccuracy(DatasetEvaluator):
    def reset(self):
        self.correct = self.total = 0

    def process(self, inputs, outputs):
        for i, o in zip(inputs, outputs):
            valid = i["sem_seg"] != 255
            self.correct += int((o["sem_seg"].argmax(0) == i["sem_seg"])[valid].sum())
            self.total += int(valid.sum())

    def evaluate(self):
        return {"toy": {"acc": 100.0 * self.correct / self.total}}


class _LrRecorder(HookBase):
    def __init__(self):
        self.lrs = {}

    def before_step(self):
        # the last group is the predictor's bias (no backbone multiplier): the logged lr
        self.lrs[self.trainer.iter] = self.trainer.optimizer.param_groups[0]["lr"]


class _CrashAt(HookBase):
    def __init__(self, it):
        self.it = it

    def before_step(self):
        if self.trainer.iter == self.it:
            raise RuntimeError(f"simulated crash at iteration {self.it}")


class ToyTrainer(DefaultTrainer):
    writer_period = 2
    crash_at = None

    @classmethod
    def build_train_loader(cls, cfg):
        return _Forever(_batch(0))

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        return [_batch(1), _batch(2)]

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        return _PixelAccuracy()

    def build_hooks(self):
        self.lr_recorder = _LrRecorder()
        extra = [self.lr_recorder] + ([_CrashAt(self.crash_at)] if self.crash_at is not None else [])
        return extra + super().build_hooks()


def _cfg(output_dir):
    cfg = get_cfg()
    cfg.MODEL.META_ARCHITECTURE = "ToyTrainSegmentor"
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES = NUM_CLASSES
    cfg.SOLVER.OPTIMIZER = "ADAMW"
    cfg.SOLVER.BASE_LR = 0.05
    cfg.SOLVER.BIAS_LR_FACTOR = 0.5
    cfg.SOLVER.LR_SCHEDULER_NAME = "WarmupPolyLR"
    cfg.SOLVER.WARMUP_ITERS = 2
    cfg.SOLVER.MAX_ITER = 6
    cfg.SOLVER.CHECKPOINT_PERIOD = 3
    cfg.TEST.EVAL_PERIOD = 3
    cfg.DATASETS.TEST = ("toy_eval",)
    cfg.OUTPUT_DIR = str(output_dir)
    cfg.SEED = 3
    cfg.freeze()
    return cfg


def _read_metrics(output_dir):
    with open(os.path.join(output_dir, "metrics.json")) as f:
        return [json.loads(line) for line in f]


def test_train_checkpoint_resume(tmp_path):
    # A: uninterrupted
    torch.manual_seed(0)
    a = ToyTrainer(_cfg(tmp_path / "a"))
    a.resume_or_load(resume=False)
    results_a = a.train()
    assert set(results_a) == {"toy"} and 0 <= results_a["toy"]["acc"] <= 100
    final_a = {k: v.clone() for k, v in a.model.state_dict().items()}
    assert os.path.isfile(tmp_path / "a" / "model_final.pth")
    assert os.path.isfile(tmp_path / "a" / "model_0000002.pth")

    metrics = _read_metrics(tmp_path / "a")
    assert [m["iteration"] for m in metrics] == sorted(m["iteration"] for m in metrics)
    assert {1, 3, 5} <= {m["iteration"] for m in metrics}
    keys = set().union(*metrics)
    assert {"total_loss", "loss_sem_seg", "loss_reg", "lr", "data_time", "toy/acc"} <= keys
    lr_at = {m["iteration"]: m["lr"] for m in metrics if "lr" in m}
    assert lr_at[1] == pytest.approx(a.lr_recorder.lrs[1])
    assert glob.glob(str(tmp_path / "a" / "events.out.tfevents.*"))

    # B: same start, crashes at iteration 4 (after the checkpoint of iteration 2)
    torch.manual_seed(0)
    ToyTrainer.crash_at = 4
    try:
        b = ToyTrainer(_cfg(tmp_path / "b"))
    finally:
        ToyTrainer.crash_at = None
    b.resume_or_load(resume=False)
    with pytest.raises(RuntimeError, match="simulated crash"):
        b.train()
    assert (tmp_path / "b" / "last_checkpoint").read_text() == "model_0000002.pth"

    # C: resumes B
    torch.manual_seed(123)  # another initialization: everything must come from the checkpoint
    c = ToyTrainer(_cfg(tmp_path / "b"))
    c.resume_or_load(resume=True)
    assert c.start_iter == 3 and c.iter == 2
    saved = torch.load(tmp_path / "b" / "model_0000002.pth", weights_only=True)
    saved_opt = saved["trainer"]["_trainer"]["optimizer"]
    opt_state = c.optimizer.state_dict()
    assert opt_state["param_groups"] == saved_opt["param_groups"]
    for pid, st in saved_opt["state"].items():
        for name, val in st.items():
            assert torch.equal(opt_state["state"][pid][name], val)
    assert c.scheduler.last_epoch == 3
    assert c.optimizer.param_groups[0]["lr"] == pytest.approx(a.lr_recorder.lrs[3])
    assert c.optimizer.param_groups[1]["lr"] == pytest.approx(0.5 * a.lr_recorder.lrs[3])  # a bias: BIAS_LR_FACTOR

    results_c = c.train()
    assert min(c.lr_recorder.lrs) == 3
    for it in (3, 4, 5):
        assert c.lr_recorder.lrs[it] == pytest.approx(a.lr_recorder.lrs[it], rel=1e-12)
    # each iteration's random draws depend on (seed, rank, iteration) only: the resumed run draws
    # what iterations 3..5 drew in the uninterrupted one (which had also evaluated in between)
    assert c.model.draws == a.model.draws[3:] and len(set(a.model.draws)) == 6
    for k, v in c.model.state_dict().items():
        assert torch.equal(v, final_a[k]), k
    assert results_c["toy"]["acc"] == pytest.approx(results_a["toy"]["acc"])
    # the resumed run appends to metrics.json; the final evaluation is tagged iteration == MAX_ITER
    metrics_b = _read_metrics(tmp_path / "b")
    assert metrics_b[-1]["iteration"] == 6 and metrics_b[-1]["toy/acc"] == pytest.approx(results_c["toy"]["acc"])
    assert [m["iteration"] for m in metrics_b if "total_loss" in m][-1] == 5


def test_console_line_has_losses_lr_and_eta(tmp_path):
    records = []

    class _Handler(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger = logging.getLogger("segcore.utils.events")
    handler = _Handler()
    logger.addHandler(handler)
    try:
        torch.manual_seed(0)
        t = ToyTrainer(_cfg(tmp_path))
        t.train()
    finally:
        logger.removeHandler(handler)
    lines = [r for r in records if "iter:" in r]
    assert lines, records
    last = lines[-1]
    for part in ("eta:", "iter: 5", "total_loss:", "loss_sem_seg:", "lr:", "data_time:"):
        assert part in last, last


class _NaNModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(2))

    def forward(self, batch):
        return {"loss_ok": self.w.sum(), "loss_bad": self.w.sum() * float("nan")}


def test_non_finite_loss_raises_with_iteration_and_loss_dict():
    model = _NaNModel()
    trainer = SimpleTrainer(model, _Forever([None]), torch.optim.SGD(model.parameters(), lr=1.0))
    with pytest.raises(FloatingPointError, match="iteration=0") as e:
        trainer.train(0, 2)
    assert "Non-finite terms: {'loss_bad': nan}" in str(e.value) and "loss_ok" in str(e.value)
    assert str(e.value).count("iteration=") == 1  # not wrapped a second time by the train loop
    assert torch.equal(model.w.detach(), torch.ones(2))  # the bad step was not applied


class _DivergesAt(nn.Module):
    """Raises what the set criterion raises for non-finite predictions, at one iteration."""

    def __init__(self, bad_call):
        super().__init__()
        self.w = nn.Parameter(torch.ones(2))
        self.calls = 0
        self.bad_call = bad_call

    def forward(self, batch):
        self.calls += 1
        if self.calls == self.bad_call:
            raise FloatingPointError("The model's predictions are not finite: pred_masks of aux_outputs[0]")
        return {"loss": self.w.sum()}


def test_floating_point_errors_get_the_iteration():
    model = _DivergesAt(bad_call=3)
    trainer = SimpleTrainer(model, _Forever([None]), torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(FloatingPointError) as e:
        trainer.train(5, 10)
    assert str(e.value) == "At iteration=7: The model's predictions are not finite: pred_masks of aux_outputs[0]"
    assert isinstance(e.value.__cause__, FloatingPointError)


def _toy_model():
    cfg = get_cfg()
    cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES = NUM_CLASSES
    return ToyTrainSegmentor(cfg)


def test_amp_trainer_on_cpu():
    model = _toy_model()
    with pytest.warns(RuntimeWarning, match="float32"):
        trainer = AMPTrainer(model, _Forever(_batch(0)), torch.optim.SGD(model.parameters(), lr=0.1))
    trainer.train(0, 2)
    assert model.autocast_seen == [False, False]
    assert "grad_scaler" in trainer.state_dict()

    model = _toy_model()
    before = model.predictor.weight.detach().clone()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        trainer = AMPTrainer(model, _Forever(_batch(0)), torch.optim.SGD(model.parameters(), lr=0.1),
                             precision=torch.bfloat16)
    trainer.train(0, 2)
    assert model.autocast_seen == [torch.bfloat16, torch.bfloat16]
    assert not torch.equal(before, model.predictor.weight)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_amp_trainer_on_cuda_uses_a_grad_scaler():
    model = _toy_model().cuda()
    trainer = AMPTrainer(model, _Forever(_batch(0)), torch.optim.SGD(model.parameters(), lr=0.1))
    assert trainer.grad_scaler.is_enabled()
    trainer.train(0, 3)
    assert trainer.state_dict()["grad_scaler"]["scale"] > 0
    assert trainer.storage.history("total_loss").latest() < float("inf")


def test_hooks_order_eval_at_end_and_lr_recorded(tmp_path):
    model = _toy_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    calls = []
    trainer = SimpleTrainer(model, _Forever(_batch(0)), opt)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    trainer.register_hooks([
        hooks.IterationTimer(),
        hooks.LRScheduler(opt, sched),
        hooks.EvalHook(2, lambda: calls.append(trainer.iter) or {"m": {"v": 1.0}}),
        None,
    ])
    trainer.train(0, 5)
    # periodic at iterations 1, 3 and once after the last one (not twice)
    assert calls == [1, 3, 5]
    assert [v for v, _ in trainer.storage.history("lr").values()] == [0.1, 0.1, 0.05, 0.05, 0.025]
    assert trainer.storage.history("m/v").latest() == 1.0
    assert trainer.state_dict()["hooks"]["LRScheduler"]["last_epoch"] == 5


# --------------------------------------------------------------------------- exact resume with a real loader
def _random_mapper(d):
    """Random flip (NumPy) and noise (torch), as augmentations draw them."""
    image, sem_seg = d["image"].clone(), d["sem_seg"].clone()
    if np.random.rand() < 0.5:
        image, sem_seg = image.flip(-1), sem_seg.flip(-1)
    image = (image.int() + torch.randint(0, 16, image.shape)).clamp(0, 255).to(torch.uint8)
    return {**d, "image": image, "sem_seg": sem_seg}


def _toy_dataset():
    items = _batch(7, n=5)
    for i, d in enumerate(items):
        d["width"], d["height"] = (8, 6) if i % 2 else (6, 8)  # landscape / portrait: grouping keeps some waiting
    return items


class LoaderTrainer(ToyTrainer):
    @classmethod
    def build_train_loader(cls, cfg):
        from segcore.data import build_detection_train_loader

        return build_detection_train_loader(_toy_dataset(), mapper=_random_mapper, total_batch_size=2,
                                            aspect_ratio_grouping=True, seed=cfg.SEED if cfg.SEED >= 0 else None)


def _loader_cfg_seed(output_dir, seed):
    cfg = _cfg(output_dir)
    cfg.defrost()
    cfg.SEED = seed
    cfg.freeze()
    return cfg


@pytest.mark.parametrize("seed", [3, -1])
def test_resume_continues_the_data_stream_exactly(tmp_path, seed):
    """Crash after the checkpoint of iteration 2, resume: the final weights equal an uninterrupted
    run's bit for bit. With SEED -1 (random seeds) the resumed process draws other seeds at first,
    and the checkpoint's seeds (per-iteration, loader, sampler) replace them."""
    np.random.seed(1)
    torch.manual_seed(0)
    a = LoaderTrainer(_loader_cfg_seed(tmp_path / "a", seed))
    a.train()
    final_a = {k: v.clone() for k, v in a.model.state_dict().items()}

    np.random.seed(1)
    torch.manual_seed(0)
    LoaderTrainer.crash_at = 4
    try:
        b = LoaderTrainer(_loader_cfg_seed(tmp_path / "b", seed))
    finally:
        LoaderTrainer.crash_at = None
    with pytest.raises(RuntimeError, match="simulated crash"):
        b.train()
    saved = torch.load(tmp_path / "b" / "model_0000002.pth", weights_only=True)["trainer"]
    assert saved["seed"] == a.seed
    loader_state = saved["_trainer"]["data_loader"]
    assert loader_state["world_size"] == 1 and loader_state["states"][0]["position"] >= 6

    np.random.seed(2)
    torch.manual_seed(2)
    c = LoaderTrainer(_loader_cfg_seed(tmp_path / "b", seed))
    if seed < 0:
        assert c.seed != a.seed and c.data_loader.seed != a.data_loader.seed
    c.resume_or_load(resume=True)
    assert c.seed == a.seed and c.data_loader.state_dict() == loader_state["states"][0]
    c.train()
    assert c.model.draws == a.model.draws[3:]
    for k, v in c.model.state_dict().items():
        assert torch.equal(v, final_a[k]), k


def test_resume_without_a_loader_state_warns_and_restarts_the_stream(tmp_path):
    a = LoaderTrainer(_loader_cfg_seed(tmp_path, 3))
    state = a.state_dict()
    del state["_trainer"]["data_loader"]  # a checkpoint of an older version
    a._trainer._data_loader_iter_obj = iter([])  # an iterator that must be replaced after a load
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("segcore.engine.train_loop")
    logger.addHandler(handler)
    try:
        a.load_state_dict(state)
    finally:
        logger.removeHandler(handler)
    assert any("no data-loader state" in r.getMessage() for r in records)


def test_loader_state_saved_with_another_number_of_processes(tmp_path):
    a = LoaderTrainer(_loader_cfg_seed(tmp_path, 3))
    state = a.state_dict()
    shared = {"seed": 11, "position": 9, "pending": [7], "sampler": {"seed": 5, "size": 5, "shuffle": True}}
    state["_trainer"]["data_loader"] = {"world_size": 2, "states": [shared, dict(shared, position=10, pending=[])]}
    a.load_state_dict(state)
    # the same number of images drawn over all processes: 2 x 9 in this single process
    assert a.data_loader.state_dict() == {"seed": 11, "position": 18, "pending": [],
                                          "sampler": {"seed": 5, "size": 5, "shuffle": True}}


def _two_process_loader_states(out_dir):
    """Each rank trains a few iterations with a grouped loader whose positions differ by rank, then
    checks that the checkpointed trainer state holds every rank's loader state and that a new
    trainer restores its own."""
    import json

    from segcore.data import build_detection_train_loader
    from segcore.data.samplers import TrainingSampler
    from segcore.utils import comm

    def make():
        model = _toy_model()
        # a fixed index stream with which the two processes end at different positions
        loader = build_detection_train_loader(_toy_dataset(), mapper=_random_mapper, total_batch_size=4,
                                              sampler=TrainingSampler(5, seed=1), aspect_ratio_grouping=True, seed=5)
        return SimpleTrainer(model, loader, torch.optim.SGD(model.parameters(), lr=0.1))

    trainer = make()
    trainer.train(0, 3)
    own = trainer.data_loader.state_dict()
    saved = trainer.state_dict()["data_loader"]
    restored = make()
    restored.load_state_dict(trainer.state_dict())
    with open(os.path.join(out_dir, f"rank{comm.get_rank()}.json"), "w") as f:
        json.dump({"own": own, "saved": saved, "restored": restored.data_loader.state_dict()}, f)


def test_loader_states_of_every_process_are_checkpointed(tmp_path):
    import json

    import torch.distributed as dist

    from segcore.engine import launch

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo required")
    launch(_two_process_loader_states, 2, dist_url="auto", args=(str(tmp_path),))
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    owns = [r["own"] for r in results]
    assert owns[0]["position"] != owns[1]["position"], owns  # the processes are at different positions
    assert owns[0]["pending"] or owns[1]["pending"], owns  # and some images wait in a bucket
    for r in results:
        assert r["saved"] == {"world_size": 2, "states": owns}
    assert [r["restored"] for r in results] == owns
