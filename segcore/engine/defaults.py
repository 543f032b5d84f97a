"""Default training / inference setup, as Detectron2's ``engine/defaults.py``.

* :func:`default_argument_parser`: the ``train_net.py`` command line;
* :func:`default_setup`: output folder, loggers, config dump, seeding, device fallback;
* :func:`default_writers`: console, ``metrics.json`` and TensorBoard writers;
* :class:`DefaultPredictor`: one image in (BGR numpy array), the model's output dict out;
* :class:`DefaultTrainer`: model, optimizer, lr scheduler, data, checkpoints, evaluation and
  logging built from a config, with resuming.
"""
from __future__ import annotations

import argparse
import inspect
import logging
import os
import sys
import weakref
from collections import OrderedDict
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from segcore.checkpoint import Checkpointer
from segcore.config import add_model_family_configs, check_unsupported_keys, get_cfg
from segcore.data import DatasetCatalog
from segcore.evaluation import (
    DatasetEvaluator,
    build_evaluator,
    inference_on_dataset,
    print_csv_format,
    verify_results,
)
from segcore.modeling import SemanticSegmentorWithTTA, build_model, model_output_tasks
from segcore.solver import build_lr_scheduler, build_optimizer
from segcore.utils import comm
from segcore.utils.collect_env import collect_env_info
from segcore.utils.env import derive_seed, reseed_all_rng, seed_all_rng
from segcore.utils.events import CommonMetricPrinter, EventWriter, JSONWriter, TensorboardXWriter
from segcore.utils.file_io import PathManager
from segcore.utils.logger import setup_logger
from segcore.utils.precision import inference_precision, precision_dtype

from . import hooks
from .compile import compile_model
from .output_lock import OutputDirError, lock_output_dir
from .train_loop import AMPTrainer, SimpleTrainer, TrainerBase
from .weights import load_inference_weights

__all__ = [
    "DefaultPredictor",
    "DefaultTrainer",
    "create_ddp_model",
    "default_argument_parser",
    "default_setup",
    "default_writers",
]


def create_ddp_model(model: nn.Module, *, fp16_compression: bool = False, **kwargs: Any) -> nn.Module:
    """Wrap ``model`` in ``DistributedDataParallel`` when more than one process runs.

    Args:
        model: the model.
        fp16_compression: compress gradients to fp16 for the all-reduce (CUDA only).
        kwargs: passed to ``DistributedDataParallel`` (``device_ids`` defaults to this process's
            GPU on CUDA, to none on CPU; ``broadcast_buffers`` becomes ``forward_sync_buffers``
            on torch versions that renamed it).

    Returns:
        the model itself with one process, else the wrapped model.
    """
    if comm.get_world_size() == 1:
        return model
    if "device_ids" not in kwargs and next(model.parameters()).device.type == "cuda":
        kwargs["device_ids"] = [comm.get_local_rank()]
    if "broadcast_buffers" in kwargs and "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters:
        # Newer torch renamed the option (buffers are still synchronized once at construction).
        kwargs["forward_sync_buffers"] = kwargs.pop("broadcast_buffers")
    ddp = DistributedDataParallel(model, **kwargs)
    if fp16_compression:
        from torch.distributed.algorithms.ddp_comm_hooks import default as comm_hooks

        ddp.register_comm_hook(state=None, hook=comm_hooks.fp16_compress_hook)
    return ddp


def _default_dist_port() -> int:
    # A port that is the same for all of a user's runs (as Detectron2): two concurrent multi-GPU
    # jobs of the same user need an explicit --dist-url.
    uid = os.getuid() if sys.platform != "win32" else 1
    return 2**15 + 2**14 + hash(uid) % 2**14


def default_argument_parser(epilog: str | None = None) -> argparse.ArgumentParser:
    """The command line of ``train_net.py`` (as Detectron2's).

    Options: ``--config-file FILE``, ``--resume``, ``--eval-only``, ``--num-gpus N`` (processes
    per machine; on a CPU-only machine, CPU processes), ``--num-machines``, ``--machine-rank``,
    ``--dist-url`` (default ``tcp://127.0.0.1:<port derived from the user id>``), and trailing
    ``KEY VALUE`` config overrides collected in ``opts``.
    """
    epilog = epilog or f"""
Examples:

Run on single machine:
    $ {sys.argv[0]} --num-gpus 8 --config-file cfg.yaml

Change some config options:
    $ {sys.argv[0]} --config-file cfg.yaml MODEL.WEIGHTS /path/to/weight.pth SOLVER.BASE_LR 0.001

Run on multiple machines:
    (machine0)$ {sys.argv[0]} --machine-rank 0 --num-machines 2 --dist-url <URL> [--other-flags]
    (machine1)$ {sys.argv[0]} --machine-rank 1 --num-machines 2 --dist-url <URL> [--other-flags]
"""
    parser = argparse.ArgumentParser(epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to config file")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="Resume from the last checkpoint in OUTPUT_DIR if there is one "
        "(see DefaultTrainer.resume_or_load); otherwise start from MODEL.WEIGHTS.",
    )
    parser.add_argument("--eval-only", action="store_true", help="perform evaluation only")
    parser.add_argument(
        "--num-gpus", type=int, default=1, help="number of processes per machine (one per GPU; CPU processes without CUDA)"
    )
    parser.add_argument("--num-machines", type=int, default=1, help="total number of machines")
    parser.add_argument("--machine-rank", type=int, default=0, help="the rank of this machine (unique per machine)")
    parser.add_argument(
        "--dist-url",
        default=f"tcp://127.0.0.1:{_default_dist_port()}",
        help="initialization URL for the torch.distributed process group ('auto': a free local port). "
        "See https://pytorch.org/docs/stable/distributed.html for details.",
    )
    parser.add_argument(
        "opts",
        help="Modify config options at the end of the command, as space-separated "
        '"PATH.KEY VALUE" pairs, e.g. SOLVER.BASE_LR 0.001 OUTPUT_DIR out/',
        default=None,
        nargs=argparse.REMAINDER,
    )
    return parser


def _set_cfg_value(cfg, key_path: str, value: Any) -> None:
    """Set ``cfg.<key_path>`` even when ``cfg`` is frozen (it stays frozen)."""
    was_frozen = cfg.is_frozen()
    cfg.defrost()
    node = cfg
    *parents, leaf = key_path.split(".")
    for p in parents:
        node = node[p]
    node[leaf] = value
    if was_frozen:
        cfg.freeze()


def _fall_back_to_cpu(cfg, logger: logging.Logger) -> None:
    """Switch ``MODEL.DEVICE`` to "cpu" (with a warning) when it asks for CUDA and none is available."""
    if str(cfg.MODEL.DEVICE).startswith("cuda") and not torch.cuda.is_available():
        logger.warning(f"MODEL.DEVICE is '{cfg.MODEL.DEVICE}' but CUDA is not available: using 'cpu' instead.")
        _set_cfg_value(cfg, "MODEL.DEVICE", "cpu")


def setup_cfg(config_file: str, opts: Sequence[str] = (), *, freeze: bool = True):
    """The config of a command line: defaults + every installed model family's keys
    (:func:`segcore.config.add_model_family_configs`) + ``config_file`` + ``opts`` overrides.

    ``MODEL.DEVICE`` falls back to "cpu" when it asks for CUDA and none is available. Used by
    ``train_net.py``, ``demo/demo.py`` and ``tools/analyze_model.py``.

    Args:
        config_file: YAML config path (with ``_BASE_`` inheritance).
        opts: ``[KEY, VALUE, ...]`` overrides.
        freeze: freeze the returned config.

    Raises:
        segcore.config.ConfigError: missing / malformed file, an unknown key, or a key that nothing
            reads set to a non-default value (:func:`segcore.config.check_unsupported_keys`); the
            message names the key.
        RuntimeError: no model family is installed.
    """
    cfg = get_cfg()
    add_model_family_configs(cfg)
    defaults = cfg.clone()
    cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    check_unsupported_keys(cfg, defaults)
    _fall_back_to_cpu(cfg, logging.getLogger(__name__))
    if freeze:
        cfg.freeze()
    return cfg


def default_setup(cfg, args: argparse.Namespace | None) -> None:
    """Prepare a training or evaluation process (as Detectron2's ``default_setup``).

    0. Check that every dataset ``cfg.DATASETS.TRAIN`` and ``TEST`` name is registered.
    1. Create ``cfg.OUTPUT_DIR`` and lock it for this run (main process, i.e. rank 0:
       :func:`segcore.engine.output_lock.lock_output_dir`; the lock is released when the process
       ends, or when it locks another folder).
    2. Set up the ``segcore`` and ``fvcore`` loggers (console on rank 0, ``log.txt`` files).
    3. If ``cfg.MODEL.DEVICE`` asks for CUDA and none is available, log a warning and switch it
       to "cpu" (also on a frozen config, which stays frozen).
    4. Log the environment, the command line and the config file; save the full config as
       ``OUTPUT_DIR/config.yaml`` (main process).
    5. Seed all RNGs with ``cfg.SEED + rank`` (a random seed when ``SEED < 0``); set
       ``torch.backends.cudnn.benchmark = cfg.CUDNN_BENCHMARK`` (not for ``--eval-only``) and
       ``cfg.FLOAT32_PRECISION`` when given.

    Args:
        cfg: the full config.
        args: the parsed command line (may be ``None``).

    Raises:
        UnknownDatasetError: a dataset name is not registered (the message names the key, the
            name and the registered datasets); nothing is written.
        OutputDirError: ``cfg.OUTPUT_DIR`` cannot be used (a file, permission denied, ...), or
            :class:`~segcore.engine.output_lock.OutputDirInUseError`: another live run holds it.
            Every rank raises it, before anything is written into the folder.
    """
    DatasetCatalog.check_registered(cfg.DATASETS.TRAIN, "DATASETS.TRAIN")
    DatasetCatalog.check_registered(cfg.DATASETS.TEST, "DATASETS.TEST")
    output_dir = cfg.OUTPUT_DIR
    error = None
    if comm.is_main_process() and output_dir:
        try:
            lock_output_dir(output_dir)
        except OutputDirError as e:
            error = e
    # every rank learns of the main process's failure (instead of waiting for it at a barrier),
    # and the folder exists before other ranks open their log files
    error = comm.all_gather(error)[0]
    if error is not None:
        raise error

    rank = comm.get_rank()
    setup_logger(output_dir or None, distributed_rank=rank, name="fvcore")
    logger = setup_logger(output_dir or None, distributed_rank=rank)

    _fall_back_to_cpu(cfg, logger)

    logger.info(f"Rank of current process: {rank}. World size: {comm.get_world_size()}")
    logger.info("Environment info:\n" + collect_env_info())
    logger.info("Command line arguments: " + str(args))
    config_file = getattr(args, "config_file", "") if args is not None else ""
    if config_file:
        with PathManager.open(config_file, "r") as f:
            logger.info(f"Contents of args.config_file={config_file}:\n{f.read()}")

    if comm.is_main_process() and output_dir:
        path = os.path.join(output_dir, "config.yaml")
        with PathManager.open(path, "w") as f:
            f.write(cfg.dump())
        logger.info(f"Full config saved to {path}")

    seed = cfg.SEED
    seed_all_rng(None if seed < 0 else seed + rank)

    if not (args is not None and getattr(args, "eval_only", False)):
        torch.backends.cudnn.benchmark = cfg.CUDNN_BENCHMARK
    precision = cfg.get("FLOAT32_PRECISION", "")
    if precision:
        torch.set_float32_matmul_precision(precision)


def default_writers(output_dir: str, max_iter: int | None = None) -> list[EventWriter]:
    """Console (:class:`CommonMetricPrinter`), ``<output_dir>/metrics.json`` and TensorBoard
    (events in ``output_dir``) writers."""
    PathManager.mkdirs(output_dir)
    return [
        CommonMetricPrinter(max_iter),
        JSONWriter(os.path.join(output_dir, "metrics.json")),
        TensorboardXWriter(output_dir),
    ]


class DefaultPredictor:
    """Run a model on single images (as Detectron2's ``DefaultPredictor``).

    Builds ``cfg.MODEL.META_ARCHITECTURE``, loads ``cfg.MODEL.WEIGHTS``, switches to eval mode,
    and for each call resizes the image with ``ResizeShortestEdge(INPUT.MIN_SIZE_TEST,
    INPUT.MAX_SIZE_TEST)`` (no resize when ``MIN_SIZE_TEST`` is 0). The model runs under
    ``torch.inference_mode()`` at ``TEST.PRECISION`` (float32, or bfloat16 / float16 autocast:
    :func:`segcore.utils.precision.inference_precision`), with its convolution weights in
    channels-last order when ``TEST.CHANNELS_LAST`` (convolutions then run on NHWC tensors), and
    compiled with ``torch.compile`` when ``TEST.COMPILE`` (:func:`compile_model`; the first calls
    compile).

    Example::

        pred = DefaultPredictor(cfg)
        outputs = pred(cv2.imread("input.jpg"))  # {"sem_seg": (K, H, W), ...}

    The weights must all load (:func:`~segcore.engine.weights.load_inference_weights`): a model
    missing some, or with no ``MODEL.WEIGHTS``, is refused unless ``MODEL.ALLOW_PARTIAL_WEIGHTS``.

    Attributes:
        metadata: metadata of ``cfg.DATASETS.TEST[0]`` (``None`` without test datasets).

    Raises:
        IncompleteWeightsError, NonFiniteWeightsError, CheckpointReadError: the weights cannot
            be used (see :func:`~segcore.engine.weights.load_inference_weights`).
    """

    def __init__(self, cfg):
        self.cfg = cfg.clone()
        if str(self.cfg.MODEL.DEVICE).startswith("cuda") and not torch.cuda.is_available():
            logging.getLogger(__name__).warning("CUDA is not available: DefaultPredictor runs on cpu.")
            _set_cfg_value(self.cfg, "MODEL.DEVICE", "cpu")
        self.model = build_model(self.cfg)
        self.model.eval()
        self.metadata = None
        if len(cfg.DATASETS.TEST):
            from segcore.data import MetadataCatalog

            self.metadata = MetadataCatalog.get(cfg.DATASETS.TEST[0])
        load_inference_weights(self.model, self.cfg)

        self.aug = None
        if cfg.INPUT.MIN_SIZE_TEST > 0:
            from segcore.data.transforms import ResizeShortestEdge

            self.aug = ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MIN_SIZE_TEST], cfg.INPUT.MAX_SIZE_TEST)
        self.input_format = cfg.INPUT.FORMAT
        if self.input_format not in ("RGB", "BGR"):
            raise ValueError(f"DefaultPredictor supports INPUT.FORMAT 'RGB' or 'BGR', got '{self.input_format}'")
        self.precision = precision_dtype(cfg.TEST.PRECISION)
        self.device_type = torch.device(self.cfg.MODEL.DEVICE).type
        inference_precision(self.precision, self.device_type)  # refuses float16 on the CPU now, not at the first image
        if cfg.TEST.CHANNELS_LAST:
            self.model.to(memory_format=torch.channels_last)  # 4-D weights only: convolutions run NHWC
        if cfg.TEST.COMPILE:
            compile_model(self.model)

    def __call__(self, original_image: np.ndarray) -> dict:
        """
        Args:
            original_image: uint8 array (H, W, 3) in BGR order (as ``cv2.imread`` gives).

        Returns:
            dict: the model's output for the image (e.g. ``"sem_seg"``: float (K, H, W) at the
            original size).

        Raises:
            ValueError: the image is not an (H, W, 3) uint8 array.
        """
        if not isinstance(original_image, np.ndarray) or original_image.ndim != 3 or original_image.shape[2] != 3:
            shape = getattr(original_image, "shape", None)
            raise ValueError(f"DefaultPredictor expects an (H, W, 3) BGR numpy array, got {type(original_image).__name__} {shape}")
        if original_image.dtype != np.uint8:
            raise ValueError(f"DefaultPredictor expects a uint8 image, got {original_image.dtype}")
        with torch.inference_mode(), inference_precision(self.precision, self.device_type):
            if self.input_format == "RGB":
                original_image = original_image[:, :, ::-1]
            height, width = original_image.shape[:2]
            image = original_image
            if self.aug is not None:
                image = self.aug.get_transform(original_image).apply_image(original_image)
            image = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
            image = image.to(self.cfg.MODEL.DEVICE)
            inputs = {"image": image, "height": height, "width": width}
            return self.model([inputs])[0]


class DefaultTrainer(TrainerBase):
    """A trainer with the default behaviour, built from a config (as Detectron2's ``DefaultTrainer``).

    1. Builds the model, optimizer, training data loader and lr scheduler with the
       ``build_*`` classmethods (override them to customize); wraps the model in
       ``DistributedDataParallel`` when several processes run.
    2. Uses :class:`SimpleTrainer` (or :class:`AMPTrainer` with ``SOLVER.AMP.ENABLED``, autocasting
       to ``SOLVER.AMP.PRECISION``: float16 or bfloat16); with ``SOLVER.COMPILE`` the model's
       backbone and head run through ``torch.compile`` (:func:`compile_model`).
    3. Hooks: iteration timer, lr scheduler, PreciseBN (``TEST.PRECISE_BN``), periodic
       checkpoints (``SOLVER.CHECKPOINT_PERIOD``, main process), evaluation
       (``TEST.EVAL_PERIOD`` and at the end), with ``TEST.AUG.ENABLED`` an evaluation with
       test-time augmentation at the end (:meth:`test_with_TTA`), and writers every
       :attr:`writer_period` iterations: console (losses, lr, ETA), ``metrics.json`` and
       TensorBoard (main process).
    4. :meth:`resume_or_load` restores the model, optimizer, scheduler, iteration, the training
       data stream's position and the seed, so that a resumed run ends with the same weights as
       an uninterrupted one (see :meth:`resume_or_load`).
    5. Before every iteration, Python's, NumPy's and torch's generators are seeded from
       (:attr:`seed`, rank, iteration), so what an iteration draws (dropout, point sampling,
       ...) does not depend on what ran before it (an evaluation, a previous run).

    Example::

        trainer = DefaultTrainer(cfg)
        trainer.resume_or_load(resume=args.resume)
        trainer.train()

    Attributes:
        scheduler, checkpointer, cfg, start_iter, max_iter; ``model``, ``data_loader`` and
        ``optimizer`` are those of the inner trainer.
        seed: the base of the per-iteration seeds: ``SEED`` when >= 0, else a random one shared
            by all processes; saved in the checkpoint and restored on resume.
    """

    #: Iterations between two writes of the console line, metrics.json and TensorBoard.
    writer_period: int = 20

    def __init__(self, cfg):
        super().__init__()
        logger = logging.getLogger("segcore")
        if not logger.isEnabledFor(logging.INFO):  # setup_logger was not called
            setup_logger()
        cfg = DefaultTrainer.auto_scale_workers(cfg, comm.get_world_size())

        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        data_loader = self.build_train_loader(cfg)
        if cfg.SOLVER.COMPILE:
            compile_model(model)
        model = create_ddp_model(model, broadcast_buffers=False)
        if cfg.SOLVER.AMP.ENABLED:
            self._trainer = AMPTrainer(model, data_loader, optimizer, precision=precision_dtype(cfg.SOLVER.AMP.PRECISION))
        else:
            self._trainer = SimpleTrainer(model, data_loader, optimizer)

        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = Checkpointer(model, cfg.OUTPUT_DIR, allow_non_finite=cfg.MODEL.ALLOW_NON_FINITE_WEIGHTS,
                                         trainer=weakref.proxy(self))
        # Half-written checkpoints of a run killed while saving: this run owns the folder now.
        self.checkpointer.remove_stale_temporary_files()
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.seed = int(cfg.SEED) if cfg.SEED >= 0 else comm.shared_random_seed()
        self.register_hooks(self.build_hooks())

    @property
    def model(self) -> nn.Module:
        return self._trainer.model

    @property
    def data_loader(self):
        return self._trainer.data_loader

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self._trainer.optimizer

    def resume_or_load(self, resume: bool = True) -> None:
        """Resume from ``OUTPUT_DIR/last_checkpoint`` or start from ``cfg.MODEL.WEIGHTS``.

        With ``resume`` and a checkpoint in ``OUTPUT_DIR``: load the model (weights and
        buffers), the optimizer, lr scheduler and grad scaler states, the training data
        stream's state (the sampler's seed, the loader's seed, each process's position in the
        index stream and the images waiting in aspect-ratio buckets) and the seed of the
        per-iteration random streams, and continue at the saved iteration + 1. With the same
        config and number of processes, the run then ends with the same weights, bit for bit
        on the CPU, as one that was never interrupted. Otherwise load only the model weights of
        ``cfg.MODEL.WEIGHTS`` (if any) and start at iteration 0.

        Raises:
            segcore.checkpoint.CheckpointReadError: the checkpoint or the weight file cannot
                be read (the message names the file and the format expected).
        """
        self.checkpointer.resume_or_load(self.cfg.MODEL.WEIGHTS, resume=resume)
        if resume and self.checkpointer.has_checkpoint():
            # self.iter was restored by load_state_dict; it is the last finished iteration.
            self.start_iter = self.iter + 1
        # All processes must agree (a process could see a different file system state).
        self.start_iter = comm.all_gather(self.start_iter)[0]

    def build_hooks(self) -> list[hooks.HookBase | None]:
        """The default hooks (see the class docstring); override to change them."""
        cfg = self.cfg.clone()
        cfg.defrost()
        cfg.DATALOADER.NUM_WORKERS = 0  # the PreciseBN loader: save memory and time
        if cfg.SEED >= 0:  # its own random stream, not a copy of the training loader's
            cfg.SEED = derive_seed(cfg.SEED, "precise_bn")

        ret: list[hooks.HookBase | None] = [
            hooks.IterationTimer(),
            hooks.LRScheduler(),
            hooks.PreciseBN(cfg.TEST.EVAL_PERIOD, self.model, self.build_train_loader(cfg), cfg.TEST.PRECISE_BN.NUM_ITER)
            if cfg.TEST.PRECISE_BN.ENABLED and _has_bn_in_training(self.model)
            else None,
        ]
        # Checkpoint after PreciseBN (it changes the model) and before evaluation (so a failing
        # evaluation can be debugged from the checkpoint).
        if comm.is_main_process():
            ret.append(hooks.PeriodicCheckpointer(self.checkpointer, cfg.SOLVER.CHECKPOINT_PERIOD))

        def test_and_save_results():
            self._last_eval_results = self.test(self.cfg, self.model)
            return self._last_eval_results

        ret.append(hooks.EvalHook(cfg.TEST.EVAL_PERIOD, test_and_save_results))
        if cfg.TEST.AUG.ENABLED:
            self.check_test_with_TTA(cfg)  # before training, not after days of it
            # After training only (as the originals' EvalHook(0, test_with_TTA)); the results join
            # those of the plain evaluation that ran just before, so train() returns both.
            def test_with_TTA_and_save_results():
                results_tta = self.test_with_TTA(self.cfg, self.model)
                self._last_eval_results = OrderedDict(getattr(self, "_last_eval_results", None) or {})
                self._last_eval_results.update(results_tta)
                return results_tta

            ret.append(hooks.EvalHook(0, test_with_TTA_and_save_results))
        if comm.is_main_process():
            # Last, so that the evaluation results of this iteration are written too.
            ret.append(hooks.PeriodicWriter(self.build_writers(), period=self.writer_period))
        return ret

    def build_writers(self) -> list[EventWriter]:
        """The event writers: :func:`default_writers` in ``cfg.OUTPUT_DIR``."""
        return default_writers(self.cfg.OUTPUT_DIR, self.max_iter)

    def train(self) -> OrderedDict | dict | None:
        """Train from :attr:`start_iter` to ``SOLVER.MAX_ITER``.

        Returns:
            the results of the last evaluation (``None`` when none ran); checked against
            ``TEST.EXPECTED_RESULTS`` when that is set.
        """
        super().train(self.start_iter, self.max_iter)
        results = getattr(self, "_last_eval_results", None)
        if len(self.cfg.TEST.EXPECTED_RESULTS) and comm.is_main_process():
            if results is None:
                raise RuntimeError("TEST.EXPECTED_RESULTS is set but no evaluation ran during training")
            verify_results(self.cfg, results)
        return results

    def before_step(self) -> None:
        """Seed Python's, NumPy's and torch's generators from (:attr:`seed`, rank, iteration), then
        run the hooks' ``before_step``."""
        # Each iteration's random streams depend on (seed, rank, iteration) only, so a resumed
        # run draws what an uninterrupted one draws whatever ran before (e.g. an evaluation).
        reseed_all_rng(derive_seed(self.seed, "iteration", comm.get_rank(), self.iter))
        super().before_step()

    def run_step(self) -> None:
        self._trainer.iter = self.iter
        self._trainer.run_step()

    def state_dict(self) -> dict:
        """:meth:`TrainerBase.state_dict` + ``"seed"`` + ``"_trainer"`` (the inner trainer's:
        optimizer, data loader, grad scaler)."""
        ret = super().state_dict()
        ret["seed"] = self.seed
        ret["_trainer"] = self._trainer.state_dict()
        return ret

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what :meth:`state_dict` saved; the checkpoint's seed replaces ``SEED`` (warned
        about when they differ), so the resumed run continues the same random streams."""
        super().load_state_dict(state_dict)
        if "seed" in state_dict:
            seed = int(state_dict["seed"])
            if self.cfg.SEED >= 0 and seed != self.cfg.SEED:
                logging.getLogger(__name__).warning(
                    f"Resuming with the checkpoint's seed {seed}, not SEED {self.cfg.SEED}, so that the run "
                    "continues as it would have without interruption."
                )
            self.seed = seed
        self._trainer.load_state_dict(state_dict["_trainer"])

    # ------------------------------------------------------------- builders
    @classmethod
    def build_model(cls, cfg) -> nn.Module:
        """:func:`segcore.modeling.build_model` (the architecture is logged)."""
        model = build_model(cfg)
        logging.getLogger(__name__).info(f"Model:\n{model}")
        return model

    @classmethod
    def build_optimizer(cls, cfg, model: nn.Module) -> torch.optim.Optimizer:
        """:func:`segcore.solver.build_optimizer` (MaskFormer parameter groups and clipping)."""
        return build_optimizer(cfg, model)

    @classmethod
    def build_lr_scheduler(cls, cfg, optimizer: torch.optim.Optimizer):
        """:func:`segcore.solver.build_lr_scheduler`."""
        return build_lr_scheduler(cfg, optimizer)

    @classmethod
    def build_dataset_mapper(cls, cfg, is_train: bool):
        """The mapper of the training (``is_train``) or test loader.

        A meta-architecture that reads inputs no image mapper makes (a video model's clips)
        declares its mapper with a classmethod ``dataset_mapper(cfg, is_train)``; it is used in
        both loaders. Otherwise: for training the mapper of ``INPUT.DATASET_MAPPER_NAME``
        (``segcore.data.build_dataset_mapper(cfg, True)``), for testing None (the test loader's
        default ``DatasetMapper``).
        """
        from segcore.data import build_dataset_mapper
        from segcore.modeling import META_ARCH_REGISTRY

        name = cfg.MODEL.META_ARCHITECTURE
        declare = getattr(META_ARCH_REGISTRY.get(name), "dataset_mapper", None) if name in META_ARCH_REGISTRY else None
        if callable(declare):
            return declare(cfg, is_train)
        return build_dataset_mapper(cfg, True) if is_train else None

    @classmethod
    def build_train_loader(cls, cfg):
        """``build_detection_train_loader`` with :meth:`build_dataset_mapper`'s training mapper (the
        one of ``INPUT.DATASET_MAPPER_NAME`` unless the meta-architecture declares its own)."""
        from segcore.data import build_detection_train_loader

        return build_detection_train_loader(cfg, mapper=cls.build_dataset_mapper(cfg, True))

    @classmethod
    def build_test_loader(cls, cfg, dataset_name: str):
        """``segcore.data.build_detection_test_loader(cfg, dataset_name)``, with the
        meta-architecture's own test mapper when it declares one (:meth:`build_dataset_mapper`)."""
        from segcore.data import build_detection_test_loader

        return build_detection_test_loader(cfg, dataset_name, mapper=cls.build_dataset_mapper(cfg, False))

    @classmethod
    def build_evaluator(cls, cfg, dataset_name: str, output_folder: str | None = None) -> DatasetEvaluator:
        """The evaluator(s) registered for the dataset's ``evaluator_type``
        (:func:`segcore.evaluation.build_evaluator`).

        Raises:
            NotImplementedError: no evaluator for that type (the message names both).
        """
        return build_evaluator(cfg, dataset_name, output_folder)

    @classmethod
    def test(cls, cfg, model: nn.Module, evaluators: DatasetEvaluator | list | None = None) -> OrderedDict:
        """Evaluate ``model`` on every dataset of ``cfg.DATASETS.TEST``, at ``TEST.PRECISION``
        (:func:`segcore.evaluation.inference_on_dataset`) and, with ``TEST.COMPILE``, through a
        compiled copy (:func:`compile_model` with ``inplace=False``: ``model`` itself stays eager).

        Args:
            cfg: the config.
            model: the model, already holding the weights to evaluate.
            evaluators: one per test dataset (default: :meth:`build_evaluator` for each; a
                dataset without an evaluator gets ``{}`` and a warning).

        Returns:
            OrderedDict ``{dataset_name: {task: {metric: value}}}``; with a single test dataset,
            its results ``{task: {metric: value}}`` directly (as Detectron2).

        Raises:
            ValueError: ``evaluators`` has another length than ``DATASETS.TEST``.
        """
        logger = logging.getLogger(__name__)
        if isinstance(evaluators, DatasetEvaluator):
            evaluators = [evaluators]
        if evaluators is not None and len(cfg.DATASETS.TEST) != len(evaluators):
            raise ValueError(f"{len(cfg.DATASETS.TEST)} test datasets (DATASETS.TEST) but {len(evaluators)} evaluators")

        if cfg.TEST.COMPILE and len(cfg.DATASETS.TEST):
            model = compile_model(model, inplace=False)  # the model given stays eager (e.g. for training)
        results: OrderedDict = OrderedDict()
        for idx, dataset_name in enumerate(cfg.DATASETS.TEST):
            data_loader = cls.build_test_loader(cfg, dataset_name)
            if evaluators is not None:
                evaluator = evaluators[idx]
            else:
                try:
                    evaluator = cls.build_evaluator(cfg, dataset_name)
                except NotImplementedError as e:
                    logger.warning(f"{e}. Use DefaultTrainer.test(evaluators=) or implement build_evaluator.")
                    results[dataset_name] = {}
                    continue
            results_i = inference_on_dataset(model, data_loader, evaluator, precision=cfg.TEST.PRECISION)
            results[dataset_name] = results_i
            if comm.is_main_process():
                if not isinstance(results_i, dict):
                    raise TypeError(f"Evaluator must return a dict on the main process, got {results_i!r}")
                logger.info(f"Evaluation results for {dataset_name} in csv format:")
                print_csv_format(results_i)

        if len(results) == 1:
            results = OrderedDict(list(results.values())[0])
        return results

    @classmethod
    def test_with_TTA(cls, cfg, model: nn.Module) -> OrderedDict:
        """Evaluate ``model`` with test-time augmentation (``TEST.AUG``: multi-scale + flip) on every
        dataset of ``cfg.DATASETS.TEST``, as the original MaskFormer / Mask2Former ``train_net.py``.

        The model is wrapped in :class:`segcore.modeling.SemanticSegmentorWithTTA` (semantic
        segmentation only) and evaluated by :meth:`test` with :meth:`build_evaluator` evaluators
        writing to ``OUTPUT_DIR/inference_TTA``. Runs after training when ``TEST.AUG.ENABLED``
        (see :meth:`build_hooks`) and in ``train_net.py --eval-only``.

        Args:
            cfg: the config.
            model: the model (``DistributedDataParallel`` is unwrapped), holding the weights to evaluate.

        Returns:
            OrderedDict: :meth:`test`'s results with every top-level key suffixed ``_TTA``
            (``{"sem_seg_TTA": {...}}`` with one test dataset, ``{"<dataset>_TTA": {...}}`` with several).

        Raises:
            ValueError: the model's outputs have no ``"sem_seg"``, or it declares other outputs
                (see :meth:`check_test_with_TTA`).
            NotImplementedError: a test dataset without an evaluator.
        """
        cls.check_test_with_TTA(cfg)
        logging.getLogger(__name__).info("Running inference with test-time augmentation ...")
        model = SemanticSegmentorWithTTA(cfg, model)
        output_folder = os.path.join(cfg.OUTPUT_DIR, "inference_TTA")
        evaluators = [cls.build_evaluator(cfg, name, output_folder=output_folder) for name in cfg.DATASETS.TEST]
        results = cls.test(cfg, model, evaluators)
        return OrderedDict((k + "_TTA", v) for k, v in results.items())

    @classmethod
    def check_test_with_TTA(cls, cfg) -> None:
        """Refuse test-time augmentation for a model that returns more than semantic segmentation.

        TTA averages ``sem_seg`` only (as the originals), so the evaluators of other outputs
        would get nothing; the model's outputs are those its meta-architecture declares
        (:func:`segcore.modeling.model_output_tasks`).

        Raises:
            ValueError: the configured model declares outputs other than ``"sem_seg"``.
        """
        tasks = model_output_tasks(cfg)
        if tasks is not None and set(tasks) != {"sem_seg"}:
            raise ValueError(f"Test-time augmentation (TEST.AUG.ENABLED) supports semantic segmentation only, but "
                             f"this model returns {sorted(tasks)}: disable TEST.AUG, or turn the other outputs off "
                             "(e.g. MODEL.MASK_FORMER.TEST.PANOPTIC_ON False)")

    @staticmethod
    def auto_scale_workers(cfg, num_workers: int):
        """Scale the batch size, lr, schedule and periods from ``SOLVER.REFERENCE_WORLD_SIZE``
        processes to ``num_workers`` (linear scaling rule; as Detectron2). Returns ``cfg``
        unchanged when ``REFERENCE_WORLD_SIZE`` is 0 or equal to ``num_workers``.

        Raises:
            ValueError: ``SOLVER.IMS_PER_BATCH`` is not divisible by ``REFERENCE_WORLD_SIZE``.
        """
        old_world_size = cfg.SOLVER.REFERENCE_WORLD_SIZE
        if old_world_size == 0 or old_world_size == num_workers:
            return cfg
        cfg = cfg.clone()
        frozen = cfg.is_frozen()
        cfg.defrost()
        if cfg.SOLVER.IMS_PER_BATCH % old_world_size != 0:
            raise ValueError(
                f"SOLVER.IMS_PER_BATCH ({cfg.SOLVER.IMS_PER_BATCH}) must be divisible by "
                f"SOLVER.REFERENCE_WORLD_SIZE ({old_world_size})"
            )
        scale = num_workers / old_world_size
        bs = cfg.SOLVER.IMS_PER_BATCH = int(round(cfg.SOLVER.IMS_PER_BATCH * scale))
        lr = cfg.SOLVER.BASE_LR = cfg.SOLVER.BASE_LR * scale
        max_iter = cfg.SOLVER.MAX_ITER = int(round(cfg.SOLVER.MAX_ITER / scale))
        warmup_iter = cfg.SOLVER.WARMUP_ITERS = int(round(cfg.SOLVER.WARMUP_ITERS / scale))
        cfg.SOLVER.STEPS = tuple(int(round(s / scale)) for s in cfg.SOLVER.STEPS)
        cfg.TEST.EVAL_PERIOD = int(round(cfg.TEST.EVAL_PERIOD / scale))
        cfg.SOLVER.CHECKPOINT_PERIOD = int(round(cfg.SOLVER.CHECKPOINT_PERIOD / scale))
        cfg.SOLVER.REFERENCE_WORLD_SIZE = num_workers
        logging.getLogger(__name__).info(
            f"Auto-scaling the config to batch_size={bs}, learning_rate={lr}, max_iter={max_iter}, warmup={warmup_iter}."
        )
        if frozen:
            cfg.freeze()
        return cfg


def _has_bn_in_training(model: nn.Module) -> bool:
    from fvcore.nn.precise_bn import get_bn_modules

    return len(get_bn_modules(model)) > 0
