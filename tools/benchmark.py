#!/usr/bin/env python
"""Benchmark a config: inference latency end to end, a training step, or the data loader.

In the spirit of Detectron2's ``tools/benchmark.py``, with the same process measuring this project
and, with ``--compare hf``, the Hugging Face transformers port of the same architecture::

    # inference, one 512 x 770 image, 2 threads, against HF's Mask2Former in the same run
    python tools/benchmark.py --config-file configs/ade20k/semantic-segmentation/maskformer2_R50_bs16_160k.yaml \\
        --input-size 512 770 --threads 2 --iters 10 --compare hf --json out.json
    # a training step (forward, backward, optimizer step) on a batch of 2 synthetic 512 x 512 images
    python tools/benchmark.py --config-file CONFIG --task train --batch-size 2 --input-size 512 512
    # the training data loader (mapper + batching) of DATASETS.TRAIN
    python tools/benchmark.py --config-file configs/quickstart/maskformer_R18_quickstart.yaml --task data
    # the latency plot of several --json results
    python tools/benchmark.py --plot docs/benchmarks_latency.png --from-json a.json b.json

Inference is timed end to end per call, from the uint8 BGR image (H, W, 3) to the outputs the
config asks for (``MODEL.MASK_FORMER.TEST.*_ON``): :class:`segcore.engine.DefaultPredictor`
(test-time resize, normalization, padding, the network, post-processing) at ``--precision``
(``TEST.PRECISION``), compiled with ``--compile`` (``TEST.COMPILE``). The Hugging Face side is its
image processor (resize, rescale, normalize, pad), the model, and the processor's post-processing
functions for the same outputs (``post_process_semantic_segmentation`` / ``_panoptic_`` /
``_instance_`` with the config's thresholds and ``target_sizes`` the image size). The two are timed
alternately, call by call, so that both see the same machine load. Weights are random (the
config's ``MODEL.WEIGHTS`` is ignored unless ``--weights`` is given); the HF Mask2Former gets our
weights converted (``tools/convert-hf-mask2former-to-d2.py``: the same function), the HF MaskFormer
its own random initialization (no converter exists).

Reported per implementation: the median, min and max latency per image (seconds), throughput
(images / s at the median), the split of the median call into pre-processing, network and
post-processing, the first call (with ``--compile``: the compilation, reported apart as
``compile_s``), and the peak memory: on CPU the process's peak resident set size during the
timed calls (the peak is reset before each call where Linux allows it, /proc/self/clear_refs;
it includes both models' weights when both are loaded), also as the increase over the resident
size before the call; on CUDA ``torch.cuda.max_memory_allocated``. Training: seconds per
iteration of :class:`segcore.engine.SimpleTrainer` / ``AMPTrainer`` (``--precision`` bf16 / fp16)
``run_step`` (forward, losses, backward, optimizer step of ``SOLVER.OPTIMIZER``) on one batch and
the peak memory. Data: seconds per batch of the training loader. The machine, the thread count
and the load average before and after are recorded with the results (``--json``). With
``--profile``, one more call of each implementation (or training step) runs under
``torch.profiler`` and the operators with the most self time are reported (where the time goes).
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import itertools
import json
import logging
import os
import platform
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from segcore.utils.memory import peak_rss_bytes, reset_peak_rss, rss_bytes  # noqa: E402

logger = logging.getLogger("segcore.benchmark")

TASKS = ("inference", "train", "data")
PRECISION_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
#: the outputs a report lists, in this order
OUTPUT_ORDER = ("sem_seg", "panoptic_seg", "instances")


# --------------------------------------------------------------------------- memory and machine
class MemoryMeter:
    """Peak memory of a block: CPU peak RSS (reset first where possible) or CUDA peak allocation.

    ``with meter.measure(): ...`` then ``meter.peak`` (bytes, the maximum over all measured blocks)
    and ``meter.increase`` (the largest peak minus the usage just before its block).
    """

    def __init__(self, device: str):
        self.device = device
        self.peak = 0
        self.increase = 0
        self.reset_supported = True

    @contextlib.contextmanager
    def measure(self):
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
        else:
            self.reset_supported = reset_peak_rss() and self.reset_supported
            before = rss_bytes()
        yield
        if self.device == "cuda":
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        else:
            peak = peak_rss_bytes()
        self.peak = max(self.peak, peak)
        self.increase = max(self.increase, peak - before)

    def as_dict(self) -> dict:
        kind = "cuda_max_memory_allocated" if self.device == "cuda" else (
            "peak_rss" if self.reset_supported else "peak_rss_since_process_start")
        return {"peak_memory_mb": round(self.peak / 2**20, 1), "peak_memory_increase_mb": round(self.increase / 2**20, 1),
                "memory_measure": kind}


def machine_info(device: str, threads: int) -> dict:
    """CPU model, core count, torch / transformers versions, threads, GPU name."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        pass
    info = {"cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": threads, "torch": torch.__version__,
            "python": platform.python_version(), "avx512": "avx512f" in flags,
            "avx512_bf16": "avx512_bf16" in flags, "amx": "amx_bf16" in flags}
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:
        pass
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def summarize(seconds: Sequence[float], per_call_images: int) -> dict:
    """Median, min and max seconds per image of the timed calls, and images per second."""
    per_image = [s / per_call_images for s in seconds]
    median = statistics.median(per_image)
    return {"median_s": median, "min_s": min(per_image), "max_s": max(per_image),
            "throughput_img_s": 1.0 / median if median > 0 else float("inf"), "calls": len(seconds)}


# --------------------------------------------------------------------------- config and inputs
def setup_config(args: argparse.Namespace):
    """The benchmark's config: the file, random weights (unless ``--weights``), the device,
    precision and compile switches, then ``--opts``."""
    from segcore.engine import setup_cfg

    # random weights are what a speed measurement without --weights means
    opts = ["MODEL.WEIGHTS", args.weights or "", "MODEL.ALLOW_PARTIAL_WEIGHTS", str(not args.weights),
            "MODEL.DEVICE", args.device,
            "TEST.PRECISION", PRECISION_NAMES[args.precision], "TEST.COMPILE", str(bool(args.compile))]
    if args.task == "train":
        opts += ["SOLVER.COMPILE", str(bool(args.compile)), "SOLVER.IMS_PER_BATCH", str(args.batch_size)]
    return setup_cfg(args.config_file, opts + list(args.opts))


def synthetic_images(count: int, height: int, width: int, seed: int) -> List[np.ndarray]:
    """``count`` random uint8 BGR images (H, W, 3) from ``seed``."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8) for _ in range(count)]


def dataset_images(name: str, count: int) -> List[np.ndarray]:
    """The first ``count`` images of a registered dataset, as uint8 BGR arrays.

    Raises:
        FileNotFoundError: the dataset lists no image that exists on disk.
    """
    import cv2

    from segcore.data import DatasetCatalog

    images = []
    for record in DatasetCatalog.get(name):
        image = cv2.imread(record.get("file_name", ""), cv2.IMREAD_COLOR)
        if image is not None:
            images.append(image)
        if len(images) == count:
            break
    if not images:
        raise FileNotFoundError(f"dataset {name}: no image file found (is it generated / downloaded?)")
    return images


# --------------------------------------------------------------------------- our inference
class OurInference:
    """:class:`DefaultPredictor` on a batch of images, with the call split into pre-processing,
    network (backbone + head) and post-processing by hooks on the model's submodules."""

    name = "this project"

    def __init__(self, cfg):
        from segcore.engine import DefaultPredictor

        self.predictor = DefaultPredictor(cfg)
        self.model = self.predictor.model
        self.device = torch.device(cfg.MODEL.DEVICE).type
        self.marks: Dict[str, float] = {}
        first = getattr(self.model, "backbone", None)
        last = getattr(self.model, "sem_seg_head", None)
        if isinstance(first, torch.nn.Module) and isinstance(last, torch.nn.Module):
            first.register_forward_pre_hook(lambda *_: self._mark("network_start"))
            last.register_forward_hook(lambda *_: self._mark("network_end"))

    @torch.compiler.disable  # with --compile the hooks run inside the compiled modules: keep the clock out
    def _mark(self, key: str) -> None:
        _sync(self.device)
        self.marks[key] = time.perf_counter()

    def __call__(self, images: List[np.ndarray]):
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


# --------------------------------------------------------------------------- Hugging Face
def _load_hf_converter():
    path = os.path.join(ROOT, "tools", "convert-hf-mask2former-to-d2.py")
    spec = importlib.util.spec_from_file_location("convert_hf_mask2former_to_d2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hf_maskformer_config_from_cfg(cfg, converter):
    """The ``transformers.MaskFormerConfig`` of our MaskFormer ``cfg``: the same backbone (the
    converter's ResNet / Swin mapping), FPN and mask widths, DETR decoder (layers, heads, FFN width,
    queries, dropout) and classes.

    Raises:
        converter.UnsupportedModelError: a feature HF's MaskFormer cannot reproduce.
    """
    from transformers import DetrConfig, MaskFormerConfig

    problems: List[str] = []
    m, head, mf = cfg.MODEL, cfg.MODEL.SEM_SEG_HEAD, cfg.MODEL.MASK_FORMER
    backbone = converter._BACKBONES_BY_OUR_NAME.get(m.BACKBONE.NAME)
    if backbone is None:
        raise converter.UnsupportedModelError(f"MODEL.BACKBONE.NAME='{m.BACKBONE.NAME}' has no HF counterpart here")
    backbone_config = backbone.hf_config(cfg, problems)
    if head.PIXEL_DECODER_NAME != "BasePixelDecoder":
        problems.append(f"MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME={head.PIXEL_DECODER_NAME}: HF's MaskFormer has the "
                        "FPN pixel decoder (BasePixelDecoder) only")
    if mf.ENC_LAYERS:
        problems.append(f"MODEL.MASK_FORMER.ENC_LAYERS={mf.ENC_LAYERS}: HF's MaskFormer has no transformer encoder")
    if problems:
        raise converter.UnsupportedModelError("; ".join(problems))
    decoder = DetrConfig(d_model=mf.HIDDEN_DIM, decoder_layers=mf.DEC_LAYERS, decoder_attention_heads=mf.NHEADS,
                         decoder_ffn_dim=mf.DIM_FEEDFORWARD, num_queries=mf.NUM_OBJECT_QUERIES, dropout=mf.DROPOUT,
                         encoder_layers=0, use_timm_backbone=False, use_pretrained_backbone=False)
    return MaskFormerConfig(backbone_config=backbone_config, decoder_config=decoder, fpn_feature_size=head.CONVS_DIM,
                            mask_feature_size=head.MASK_DIM, num_labels=head.NUM_CLASSES, use_auxiliary_loss=False,
                            output_auxiliary_logits=False)


class HFInference:
    """The Hugging Face port of the config's architecture, called as its documentation shows:
    image processor -> model -> the processor's post-processing for the config's outputs.

    Raises:
        ImportError: transformers is not installed.
        ValueError: the config is neither MaskFormer nor Mask2Former, or HF cannot reproduce it.
    """

    name = "Hugging Face transformers"

    def __init__(self, cfg, our_model: Optional[torch.nn.Module], seed: int):
        import transformers

        converter = _load_hf_converter()
        mf = cfg.MODEL.MASK_FORMER
        self.device = torch.device(cfg.MODEL.DEVICE)
        self.precision = PRECISION_NAMES.get(cfg.TEST.PRECISION, cfg.TEST.PRECISION)
        self.weights_note = ""
        torch.manual_seed(seed)
        if mf.TRANSFORMER_DECODER_NAME == "MultiScaleMaskedTransformerDecoder":
            config = converter.hf_config_from_cfg(cfg)
            model = transformers.Mask2FormerForUniversalSegmentation(config)
            processor_cls = getattr(transformers, "Mask2FormerImageProcessorPil", None) or \
                transformers.Mask2FormerImageProcessor
            if our_model is not None:
                ours = {k: v.detach().cpu() for k, v in our_model.state_dict().items()}
                backbone = converter._BACKBONES_BY_OUR_NAME[cfg.MODEL.BACKBONE.NAME]
                if cfg.INPUT.FORMAT == "BGR":  # HF reads RGB: flip the first convolution's inputs
                    name = converter.OUR_BACKBONE_PREFIX + backbone.first_conv
                    ours[name] = ours[name].flip(1)
                converted = converter.convert_d2_to_hf(ours, model.state_dict(), backbone.hf_model_type)
                model.load_state_dict(converted, strict=True)
                self.weights_note = "our random weights, converted (the same function)"
        elif mf.TRANSFORMER_DECODER_NAME == "StandardTransformerDecoder":
            model = transformers.MaskFormerForInstanceSegmentation(hf_maskformer_config_from_cfg(cfg, converter))
            processor_cls = getattr(transformers, "MaskFormerImageProcessorPil", None) or \
                transformers.MaskFormerImageProcessor
            self.weights_note = "HF's own random initialization"
        else:
            raise ValueError(f"--compare hf: no Hugging Face port of {mf.TRANSFORMER_DECODER_NAME}")
        self.model = model.eval().to(self.device)
        order = [2, 1, 0] if cfg.INPUT.FORMAT == "BGR" else [0, 1, 2]
        size = ({"shortest_edge": cfg.INPUT.MIN_SIZE_TEST, "longest_edge": cfg.INPUT.MAX_SIZE_TEST}
                if cfg.INPUT.MIN_SIZE_TEST > 0 else None)
        self.processor = processor_cls(
            do_resize=size is not None, size=size, size_divisor=mf.SIZE_DIVISIBILITY if mf.SIZE_DIVISIBILITY > 0 else 32,
            image_mean=[cfg.MODEL.PIXEL_MEAN[i] / 255.0 for i in order],
            image_std=[cfg.MODEL.PIXEL_STD[i] / 255.0 for i in order], rescale_factor=1 / 255.0,
            ignore_index=cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE)
        t = mf.TEST
        self.outputs = [name for name, on in (("sem_seg", t.SEMANTIC_ON), ("panoptic_seg", t.PANOPTIC_ON),
                                              ("instances", t.INSTANCE_ON)) if on]
        self.object_mask_threshold = t.OBJECT_MASK_THRESHOLD
        self.overlap_threshold = t.OVERLAP_THRESHOLD
        self.topk = cfg.TEST.DETECTIONS_PER_IMAGE
        self.stuff_ids = set(self._stuff_ids(cfg))
        self.marks: Dict[str, float] = {}

    @staticmethod
    def _stuff_ids(cfg) -> List[int]:
        from segcore.data import MetadataCatalog

        names = list(cfg.DATASETS.TEST) or list(cfg.DATASETS.TRAIN)
        if not names:
            return []
        meta = MetadataCatalog.get(names[0])
        things = set(meta.get("thing_dataset_id_to_contiguous_id", {}).values())
        return [i for i in range(cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES) if i not in things]

    def __call__(self, images: List[np.ndarray]):
        from segcore.utils.precision import inference_precision

        rgb = [np.ascontiguousarray(image[:, :, ::-1]) for image in images]
        inputs = self.processor(images=rgb, return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        self._mark("network_start")
        with torch.inference_mode(), inference_precision(self.precision, self.device.type):
            outputs = self.model(**inputs)
        self._mark("network_end")
        sizes = [image.shape[:2] for image in images]
        with torch.inference_mode():
            if outputs.masks_queries_logits.dtype != torch.float32:  # post-processing in float32, as ours
                outputs.masks_queries_logits = outputs.masks_queries_logits.float()
                outputs.class_queries_logits = outputs.class_queries_logits.float()
            result = {}
            if "sem_seg" in self.outputs:
                result["sem_seg"] = self.processor.post_process_semantic_segmentation(outputs, target_sizes=sizes)
            if "panoptic_seg" in self.outputs:
                result["panoptic_seg"] = self.processor.post_process_panoptic_segmentation(
                    outputs, threshold=self.object_mask_threshold, overlap_mask_area_threshold=self.overlap_threshold,
                    label_ids_to_fuse=self.stuff_ids, target_sizes=sizes)
            if "instances" in self.outputs:
                # every top-k candidate, as binary maps (our instances keep all top-k too)
                result["instances"] = self.processor.post_process_instance_segmentation(
                    outputs, threshold=0.0, target_sizes=sizes, return_binary_maps=True)
        return result

    def _mark(self, key: str) -> None:
        _sync(self.device.type)
        self.marks[key] = time.perf_counter()


# --------------------------------------------------------------------------- the tasks
def _timed(fn: Callable[[], object], device: str) -> Tuple[float, object]:
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - start, out


def run_inference(args: argparse.Namespace, cfg) -> dict:
    """Time the config's model (and with ``--compare hf`` the HF port) end to end on the same images."""
    if args.input_size:
        images = synthetic_images(args.batch_size, args.input_size[0], args.input_size[1], args.seed)
        source = f"random {args.input_size[0]}x{args.input_size[1]} images"
    else:
        name = args.dataset or (cfg.DATASETS.TEST[0] if len(cfg.DATASETS.TEST) else None)
        if name is None:
            raise ValueError("give --input-size H W or --dataset NAME (the config has no DATASETS.TEST)")
        images = dataset_images(name, max(args.batch_size, 8))
        source = f"images of {name}"
    batches = [list(itertools.islice(itertools.cycle(images), i * args.batch_size, (i + 1) * args.batch_size))
               for i in range(max(1, len(images) // args.batch_size))]

    torch.manual_seed(args.seed)
    implementations = [OurInference(cfg)]
    if args.compare == "hf":
        implementations.append(HFInference(cfg, implementations[0].model, args.seed))
    device = torch.device(cfg.MODEL.DEVICE).type
    results = {}
    meters = {impl.name: MemoryMeter(device) for impl in implementations}
    times: Dict[str, List[float]] = {impl.name: [] for impl in implementations}
    splits: Dict[str, List[Tuple[float, float, float]]] = {impl.name: [] for impl in implementations}
    first_call: Dict[str, float] = {}
    for impl in implementations:  # the first call apart: compilation, allocator warm-up
        first_call[impl.name], _ = _timed(lambda: impl(batches[0]), device)
        for i in range(max(0, args.warmup - 1)):
            impl(batches[(i + 1) % len(batches)])
    gc.collect()
    for i in range(args.iters):  # alternate the implementations call by call: the same load for both
        batch = batches[i % len(batches)]
        for impl in implementations:
            impl.marks.clear()
            with meters[impl.name].measure():
                impl.marks["start"] = time.perf_counter()
                seconds, _ = _timed(lambda: impl(batch), device)
            times[impl.name].append(seconds)
            m = impl.marks
            if "network_start" in m and "network_end" in m:
                pre = m["network_start"] - m["start"]
                net = m["network_end"] - m["network_start"]
                splits[impl.name].append((pre, net, seconds - pre - net))
    for impl in implementations:
        entry = summarize(times[impl.name], args.batch_size)
        entry["first_call_s"] = first_call[impl.name] / args.batch_size
        if args.compile and impl is implementations[0]:
            entry["compile_s"] = max(0.0, first_call[impl.name] - statistics.median(times[impl.name]))
        if splits[impl.name]:
            for j, part in enumerate(("preprocess", "network", "postprocess")):
                entry[f"{part}_median_s"] = statistics.median(s[j] for s in splits[impl.name]) / args.batch_size
        entry.update(meters[impl.name].as_dict())
        if isinstance(impl, HFInference):
            entry["weights"] = impl.weights_note
            entry["outputs"] = impl.outputs
        else:
            from segcore.modeling import model_output_tasks

            tasks = model_output_tasks(cfg) or ()
            entry["outputs"] = [t for t in OUTPUT_ORDER if t in tasks]
        results[impl.name] = entry
    if len(implementations) == 2:
        ours, theirs = (results[impl.name]["median_s"] for impl in implementations)
        results["ratio_ours_to_hf"] = ours / theirs
    results["input"] = source
    if args.profile:
        for impl in implementations:
            results[impl.name]["profile"] = profile_call(lambda: impl(batches[0]), args.profile_rows)
    return results


def profile_call(fn: Callable[[], object], rows: int) -> List[dict]:
    """One call of ``fn`` under ``torch.profiler``: the ``rows`` operators with the most self time
    (CPU, or CUDA where it ran), as ``{"op", "calls", "self_s", "self_share"}`` (share of the
    call's total self time) dicts, most first."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=activities) as prof:
        fn()
    events = prof.key_averages()
    use_cuda = torch.cuda.is_available() and any(getattr(e, "self_device_time_total", 0) for e in events)
    key = "self_device_time_total" if use_cuda else "self_cpu_time_total"
    total = sum(getattr(e, key) for e in events) or 1.0
    ranked = sorted(events, key=lambda e: getattr(e, key), reverse=True)[:rows]
    return [{"op": e.key, "calls": e.count, "self_s": getattr(e, key) / 1e6, "self_share": getattr(e, key) / total}
            for e in ranked]


def synthetic_training_batch(cfg, batch_size: int, height: int, width: int, seed: int,
                             instances_per_image: int = 8) -> List[dict]:
    """``batch_size`` training inputs: random uint8 images with ``instances_per_image`` random
    rectangles of random classes as ``instances`` (``gt_classes``, ``gt_masks``)."""
    from segcore.structures import Instances

    generator = torch.Generator().manual_seed(seed)
    num_classes = cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES
    batch = []
    for _ in range(batch_size):
        image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=generator)
        masks = torch.zeros((instances_per_image, height, width), dtype=torch.bool)
        for k in range(instances_per_image):
            y0 = int(torch.randint(0, height // 2, (1,), generator=generator))
            x0 = int(torch.randint(0, width // 2, (1,), generator=generator))
            y1 = y0 + int(torch.randint(height // 8, height // 2, (1,), generator=generator))
            x1 = x0 + int(torch.randint(width // 8, width // 2, (1,), generator=generator))
            masks[k, y0:y1, x0:x1] = True
        instances = Instances((height, width))
        instances.gt_classes = torch.randint(0, num_classes, (instances_per_image,), generator=generator)
        instances.gt_masks = masks
        batch.append({"image": image, "instances": instances, "height": height, "width": width})
    return batch


def run_train(args: argparse.Namespace, cfg) -> dict:
    """Seconds per training iteration (forward, backward, optimizer step) and peak memory."""
    from segcore.engine import AMPTrainer, SimpleTrainer, compile_model
    from segcore.modeling import build_model
    from segcore.solver import build_optimizer
    from segcore.utils.events import EventStorage

    torch.manual_seed(args.seed)
    model = build_model(cfg)
    model.train()
    optimizer = build_optimizer(cfg, model)
    if args.compile:
        compile_model(model)
    if args.input_size:
        batch = synthetic_training_batch(cfg, args.batch_size, args.input_size[0], args.input_size[1], args.seed)
        loader = itertools.repeat(batch)
        source = f"random {args.input_size[0]}x{args.input_size[1]} images with random rectangles"
    else:
        from segcore.data import build_dataset_mapper, build_detection_train_loader

        loader = build_detection_train_loader(cfg, mapper=build_dataset_mapper(cfg, True))
        source = f"batches of {', '.join(cfg.DATASETS.TRAIN)}"
    if args.precision == "fp32":
        trainer = SimpleTrainer(model, loader, optimizer)
    else:
        trainer = AMPTrainer(model, loader, optimizer, precision=PRECISION_NAMES[args.precision])
    device = torch.device(cfg.MODEL.DEVICE).type
    meter = MemoryMeter(device)
    seconds: List[float] = []
    with EventStorage(0) as storage:
        first, _ = _timed(trainer.run_step, device)
        for i in range(max(0, args.warmup - 1)):
            storage.iter = trainer.iter = i + 1
            trainer.run_step()
        gc.collect()
        for i in range(args.iters):
            storage.iter = trainer.iter = args.warmup + i
            with meter.measure():
                elapsed, _ = _timed(trainer.run_step, device)
            seconds.append(elapsed)
    entry = {"median_s_per_iter": statistics.median(seconds), "min_s_per_iter": min(seconds),
             "max_s_per_iter": max(seconds), "iters": len(seconds), "first_iter_s": first,
             "batch_size": args.batch_size, "optimizer": cfg.SOLVER.OPTIMIZER, "input": source}
    if args.compile:
        entry["compile_s"] = max(0.0, first - entry["median_s_per_iter"])
    entry.update(meter.as_dict())
    if args.profile:
        with EventStorage(args.warmup + args.iters) as storage:
            trainer.iter = storage.iter
            entry["profile"] = profile_call(trainer.run_step, args.profile_rows)
    return {"this project": entry}


def run_data(args: argparse.Namespace, cfg) -> dict:
    """Seconds per batch of the training data loader (mapper, augmentation, batching)."""
    from segcore.data import build_dataset_mapper, build_detection_train_loader

    if args.dataset:
        cfg = cfg.clone()
        cfg.defrost()
        cfg.DATASETS.TRAIN = (args.dataset,)
        cfg.freeze()
    loader = iter(build_detection_train_loader(cfg, mapper=build_dataset_mapper(cfg, True)))
    for _ in range(args.warmup):
        next(loader)
    seconds = []
    for _ in range(args.iters):
        start = time.perf_counter()
        next(loader)
        seconds.append(time.perf_counter() - start)
    entry = {"median_s_per_batch": statistics.median(seconds), "min_s_per_batch": min(seconds),
             "max_s_per_batch": max(seconds), "images_per_s": cfg.SOLVER.IMS_PER_BATCH / statistics.median(seconds),
             "batch_size": cfg.SOLVER.IMS_PER_BATCH, "num_workers": cfg.DATALOADER.NUM_WORKERS,
             "datasets": list(cfg.DATASETS.TRAIN)}
    return {"this project": entry}


# --------------------------------------------------------------------------- output
def format_table(report: dict) -> str:
    """A Markdown table of the report's implementations."""
    rows = []
    task = report["args"]["task"]
    for name, entry in report["results"].items():
        if not isinstance(entry, dict):
            continue
        if task == "inference":
            split = ""
            if "network_median_s" in entry:
                split = (f"{entry['preprocess_median_s']:.3f} / {entry['network_median_s']:.3f} / "
                         f"{entry['postprocess_median_s']:.3f}")
            rows.append(f"| {name} | {entry['median_s']:.3f} | {entry['min_s']:.3f} | {entry['max_s']:.3f} | "
                        f"{entry['throughput_img_s']:.2f} | {split} | {entry['peak_memory_mb']:.0f} "
                        f"(+{entry['peak_memory_increase_mb']:.0f}) |")
        elif task == "train":
            rows.append(f"| {name} | {entry['median_s_per_iter']:.3f} | {entry['min_s_per_iter']:.3f} | "
                        f"{entry['max_s_per_iter']:.3f} | {entry['peak_memory_mb']:.0f} |")
        else:
            rows.append(f"| {name} | {entry['median_s_per_batch']:.3f} | {entry['images_per_s']:.1f} |")
    if task == "inference":
        head = ("| implementation | median s/img | min | max | img/s | pre / network / post (s) | peak MB (+call) |\n"
                "|---|---|---|---|---|---|---|")
    elif task == "train":
        head = "| implementation | median s/iter | min | max | peak MB |\n|---|---|---|---|---|"
    else:
        head = "| implementation | median s/batch | images/s |\n|---|---|---|"
    return "\n".join([head] + rows)


def plot(json_files: Sequence[str], output: str) -> None:
    """A bar chart of the median inference latency per model and implementation (whiskers: min
    to max) from ``--json`` results, written to ``output`` (PNG).

    Raises:
        ValueError: none of the files holds inference results.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: List[Tuple[str, Dict[str, dict]]] = []
    for path in json_files:
        with open(path) as f:
            report = json.load(f)
        if report["args"]["task"] != "inference":
            continue
        label = report.get("label") or os.path.splitext(os.path.basename(report["args"]["config_file"]))[0]
        label = label.replace(", ", "\n") + f"\n{report['args']['precision']}"  # one part per line
        groups.append((label, {k: v for k, v in report["results"].items() if isinstance(v, dict)}))
    if not groups:
        raise ValueError("no inference results in " + ", ".join(json_files))
    names = sorted({n for _, g in groups for n in g}, key=lambda n: (n != "this project", n))
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(max(6.0, 2.4 * len(groups)), 4.6))
    for j, name in enumerate(names):
        xs, ys, lo, hi = [], [], [], []
        for i, (_, g) in enumerate(groups):
            if name in g:
                e = g[name]
                xs.append(i + (j - (len(names) - 1) / 2) * width)
                ys.append(e["median_s"])
                lo.append(e["median_s"] - e["min_s"])
                hi.append(e["max_s"] - e["median_s"])
        bars = ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
    ax.set_xticks(range(len(groups)), [g[0] for g in groups], fontsize=8)
    ax.set_ylabel("seconds per image, end to end (median; min-max)")
    ax.set_title("Inference latency, CPU, batch 1")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--config-file", metavar="FILE", help="config to benchmark")
    parser.add_argument("--task", choices=TASKS, default="inference")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"),
                        help="random images of this size (else the images of --dataset / DATASETS.TEST[0])")
    parser.add_argument("--dataset", help="a registered dataset to read images from")
    parser.add_argument("--batch-size", type=int, default=1, help="images per call / per training iteration")
    parser.add_argument("--precision", choices=sorted(PRECISION_NAMES), default="fp32",
                        help="fp32, or autocast to bf16 (CPU, CUDA) / fp16 (CUDA) (TEST.PRECISION, AMP training)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the backbone and head (TEST.COMPILE)")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--iters", type=int, default=10, help="timed calls / iterations / batches")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first (the first one is reported apart)")
    parser.add_argument("--compare", choices=("hf",), help="also time the Hugging Face port in the same run")
    parser.add_argument("--weights", default="", help="weights to load (default: random; MODEL.WEIGHTS is ignored)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights and images")
    parser.add_argument("--profile", action="store_true",
                        help="after timing, profile one more call of each implementation / training step (torch.profiler)")
    parser.add_argument("--profile-rows", type=int, default=12, help="operators listed per profile")
    parser.add_argument("--json", metavar="OUT", help="write the report (args, machine, results) as JSON")
    parser.add_argument("--label", help="a label for the report (the plot's group name)")
    parser.add_argument("--plot", metavar="PNG", help="plot the --from-json reports' latencies instead of measuring")
    parser.add_argument("--from-json", nargs="+", default=[], metavar="JSON", help="reports for --plot")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config overrides KEY VALUE ...")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Command line (see the module docstring). Returns the report.

    Raises:
        ValueError: missing or inconsistent arguments (e.g. fp16 on the CPU, --compare hf with a
            model HF cannot reproduce).
    """
    args = build_parser().parse_args(argv)
    if args.plot:
        plot(args.from_json, args.plot)
        print(f"Wrote {args.plot}")
        return {"plot": args.plot}
    if not args.config_file:
        raise ValueError("--config-file is required (or --plot with --from-json)")
    if args.iters < 1 or args.batch_size < 1 or args.warmup < 1:
        raise ValueError("--iters, --batch-size and --warmup must be >= 1 (the first call is always a warmup)")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: CUDA is not available")
    if args.precision == "fp16" and args.device == "cpu":
        raise ValueError("--precision fp16 needs --device cuda; use bf16 on the CPU")
    if args.compare and args.task != "inference":
        raise ValueError("--compare hf times inference only")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    cfg = setup_config(args)
    runner = {"inference": run_inference, "train": run_train, "data": run_data}[args.task]
    results = runner(args, cfg)
    report = {"args": vars(args), "label": args.label, "machine": machine_info(args.device, torch.get_num_threads()),
              "load_average_before": list(load_before), "load_average_after": list(os.getloadavg()),
              "results": results}
    print(format_table(report))
    for name, entry in results.items():
        if isinstance(entry, dict) and entry.get("profile"):
            print(f"\nprofile of one call, {name} (self time):")
            for row in entry["profile"]:
                print(f"  {row['self_share']:6.1%} {row['self_s']:8.3f} s {row['calls']:6d}x {row['op']}")
    print(f"load average (1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in load_before)}; "
          f"after: {', '.join(f'{x:.2f}' for x in report['load_average_after'])}")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2, default=str)
    return report


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        main()
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
