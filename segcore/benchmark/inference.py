"""End-to-end inference latency: this project's :class:`~segcore.engine.DefaultPredictor` and,
optionally, another implementation timed alternately with it, call by call, on the same images
(so that both see the same machine load).

A runner (:class:`InferenceRunner`) is called with a list of uint8 BGR images (H, W, 3) and
records the clock at the start and the end of its network in ``marks``; a call's time is split
into pre-processing, network and post-processing from them.
"""
from __future__ import annotations

import gc
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .inputs import batches_of, dataset_images, synthetic_images
from .memory import MemoryMeter
from .profiling import profile_call
from .settings import BenchmarkSettings
from .timing import summarize, synchronize, timed

__all__ = ["OUTPUT_ORDER", "InferenceRunner", "OurInference", "RunnerFactory", "run_inference"]

#: the outputs a report lists, in this order
OUTPUT_ORDER = ("sem_seg", "panoptic_seg", "instances")


class InferenceRunner:
    """One implementation under test: ``runner(images)`` runs it end to end on a batch.

    Subclasses set ``name`` (the report's key), call :meth:`mark` with ``"network_start"`` and
    ``"network_end"`` around their network, and say in :meth:`describe` what they computed.
    """

    name = ""

    def __init__(self, *, device_type: str):
        """
        Args:
            device_type: "cpu" or "cuda" (synchronized before the clock is read).
        """
        self.device_type = device_type
        self.marks: Dict[str, float] = {}

    @torch.compiler.disable  # with --compile the hooks run inside the compiled modules: keep the clock out
    def mark(self, key: str) -> None:
        """Record the clock (``time.perf_counter``, the device synchronized) as ``marks[key]``."""
        synchronize(self.device_type)
        self.marks[key] = time.perf_counter()

    def describe(self) -> dict:
        """Entries for the report about this implementation (e.g. its outputs, its weights)."""
        return {}

    def __call__(self, images: List[np.ndarray]):
        raise NotImplementedError


#: builds the implementation to compare with: ``factory(cfg=cfg, our_model=our_model, seed=seed)``
RunnerFactory = Callable[..., InferenceRunner]


class OurInference(InferenceRunner):
    """:class:`DefaultPredictor` on a batch of images, with the call split into pre-processing,
    network (backbone + head) and post-processing by hooks on the model's submodules."""

    name = "this project"

    def __init__(self, *, cfg):
        """
        Args:
            cfg: the config (``MODEL.DEVICE``, ``TEST.PRECISION``, ``TEST.COMPILE``, ...).
        """
        from segcore.engine import DefaultPredictor

        super().__init__(device_type=torch.device(cfg.MODEL.DEVICE).type)
        self.cfg = cfg
        self.predictor = DefaultPredictor(cfg)
        self.model = self.predictor.model
        first = getattr(self.model, "backbone", None)
        last = getattr(self.model, "sem_seg_head", None)
        if isinstance(first, torch.nn.Module) and isinstance(last, torch.nn.Module):
            first.register_forward_pre_hook(lambda *_: self.mark("network_start"))
            last.register_forward_hook(lambda *_: self.mark("network_end"))

    def describe(self) -> dict:
        """``{"outputs": [...]}``: the outputs the config's model returns, in :data:`OUTPUT_ORDER`."""
        from segcore.modeling import model_output_tasks

        tasks = model_output_tasks(self.cfg) or ()
        return {"outputs": [t for t in OUTPUT_ORDER if t in tasks]}

    def __call__(self, images: List[np.ndarray]):
        """The predictor's outputs, one dict per image."""
        if len(images) == 1:
            return [self.predictor(images[0])]
        # DefaultPredictor's steps for a batch: resize, to tensor, one model call
        from segcore.utils.precision import inference_precision

        p = self.predictor
        inputs = []
        for original in images:
            image = original[:, :, ::-1] if p.input_format == "RGB" else original
            height, width = image.shape[:2]
            if p.aug is not None:
                image = p.aug.get_transform(image).apply_image(image)
            tensor = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1))).to(p.cfg.MODEL.DEVICE)
            inputs.append({"image": tensor, "height": height, "width": width})
        with torch.inference_mode(), inference_precision(p.precision, p.device_type):
            return self.model(inputs)


def _images(cfg, settings: BenchmarkSettings) -> Tuple[List[np.ndarray], str]:
    if settings.input_size:
        height, width = settings.input_size
        return synthetic_images(settings.batch_size, height, width, settings.seed), f"random {height}x{width} images"
    name = settings.dataset or (cfg.DATASETS.TEST[0] if len(cfg.DATASETS.TEST) else None)
    if name is None:
        raise ValueError("give --input-size H W or --dataset NAME (the config has no DATASETS.TEST)")
    return dataset_images(name, max(settings.batch_size, 8)), f"images of {name}"


def run_inference(cfg, settings: BenchmarkSettings, *, compare: Optional[RunnerFactory] = None,
                  others: Sequence[RunnerFactory] = ()) -> dict:
    """Time the config's model (and ``compare``'s implementation) end to end on the same images.

    Args:
        cfg: the config (:func:`~.settings.benchmark_config`).
        settings: images (``input_size`` or a dataset), batch size, warm-up and timed calls, profile.
        compare: builds a second implementation from the config and our model (e.g. the Hugging
            Face port of the family), timed alternately with ours.
        others: more implementations timed alternately with ours (e.g. exported files:
            :func:`~.exported.exported_runner_factory`); no ratio is reported for them.

    Returns:
        ``{implementation name: entry, ..., "input": what the images are}`` and, with ``compare``,
        ``"ratio_ours_to_hf"`` (our median over the other's). An entry: :func:`~.timing.summarize`'s
        keys (seconds per image), ``first_call_s``, ``compile_s`` (ours, with ``settings.compile``),
        ``{preprocess,network,postprocess}_median_s``, :meth:`MemoryMeter.as_dict`'s keys, the
        runner's :meth:`~InferenceRunner.describe` and, with ``settings.profile``, ``profile``.

    Raises:
        ValueError: no ``input_size`` and no dataset (the config has no ``DATASETS.TEST``).
        FileNotFoundError: the dataset has no image on disk.
    """
    images, source = _images(cfg, settings)
    batches = batches_of(images, settings.batch_size)
    torch.manual_seed(settings.seed)
    implementations: List[InferenceRunner] = [OurInference(cfg=cfg)]
    if compare is not None:
        implementations.append(compare(cfg=cfg, our_model=implementations[0].model, seed=settings.seed))
    for factory in others:
        implementations.append(factory(cfg=cfg, our_model=implementations[0].model, seed=settings.seed))
    device = torch.device(cfg.MODEL.DEVICE).type
    meters = {impl.name: MemoryMeter(device=device) for impl in implementations}
    times: Dict[str, List[float]] = {impl.name: [] for impl in implementations}
    splits: Dict[str, List[Tuple[float, float, float]]] = {impl.name: [] for impl in implementations}
    first_call: Dict[str, float] = {}
    for impl in implementations:  # the first call apart: compilation, allocator warm-up
        first_call[impl.name], _ = timed(lambda: impl(batches[0]), device)
        for i in range(settings.warmup - 1):
            impl(batches[(i + 1) % len(batches)])
    gc.collect()
    for i in range(settings.iters):  # alternate the implementations call by call: the same load for both
        batch = batches[i % len(batches)]
        for impl in implementations:
            impl.marks.clear()
            with meters[impl.name].measure():
                impl.marks["start"] = time.perf_counter()
                seconds, _ = timed(lambda: impl(batch), device)
            times[impl.name].append(seconds)
            m = impl.marks
            if "network_start" in m and "network_end" in m:
                pre = m["network_start"] - m["start"]
                net = m["network_end"] - m["network_start"]
                splits[impl.name].append((pre, net, seconds - pre - net))
    results = {}
    for impl in implementations:
        entry = summarize(times[impl.name], settings.batch_size)
        entry["first_call_s"] = first_call[impl.name] / settings.batch_size
        if settings.compile and impl is implementations[0]:
            entry["compile_s"] = max(0.0, first_call[impl.name] - statistics.median(times[impl.name]))
        if splits[impl.name]:
            for j, part in enumerate(("preprocess", "network", "postprocess")):
                entry[f"{part}_median_s"] = statistics.median(s[j] for s in splits[impl.name]) / settings.batch_size
        entry.update(meters[impl.name].as_dict())
        entry.update(impl.describe())
        results[impl.name] = entry
    if compare is not None:
        ours, theirs = (results[impl.name]["median_s"] for impl in implementations[:2])
        results["ratio_ours_to_hf"] = ours / theirs
    results["input"] = source
    if settings.profile:
        for impl in implementations:
            results[impl.name]["profile"] = profile_call(lambda: impl(batches[0]), settings.profile_rows)
    return results
