"""Run a model on an image or video frames and draw what it predicts.

As Detectron2's / Mask2Former's ``demo/predictor.py`` (``VisualizationDemo``, ``AsyncPredictor``),
with a confidence threshold that applies to every kind of output (see :class:`VisualizationDemo`).
"""
from __future__ import annotations

import atexit
import bisect
import multiprocessing as mp
from collections import deque
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

import cv2
import numpy as np
import torch

from segcore.utils.video import iter_frames
from segcore.utils.video_visualizer import VideoVisualizer
from segcore.utils.visualizer import ColorMode, VisImage, Visualizer

__all__ = ["AsyncPredictor", "DRAWABLE_OUTPUTS", "LegendEntry", "SemSegConfidence", "VisualizationDemo",
           "compact_predictions", "filter_instances", "filter_segments", "float32_fields", "sem_seg_confidence",
           "sem_seg_to_labels"]

#: Value of pixels left undrawn in the class map made by :func:`sem_seg_to_labels`.
UNDRAWN_LABEL = -1

#: The model outputs the demo draws, in the order ``draw="auto"`` picks the first present
#: (Mask2Former's demo order: panoptic, then instances, then semantic).
DRAWABLE_OUTPUTS = ("panoptic_seg", "instances", "sem_seg")


def filter_instances(instances, threshold: float):
    """The instances whose ``scores`` are at least ``threshold`` (all if there is no ``scores``).

    Args:
        instances: an ``Instances`` (anything supporting boolean-mask indexing).
        threshold: minimum score in [0, 1].
    """
    if not instances.has("scores"):
        return instances
    return instances[instances.scores >= threshold]


def filter_segments(segments_info: Optional[List[dict]], threshold: float) -> Optional[List[dict]]:
    """The panoptic segments whose ``score`` is at least ``threshold``.

    Segments without a ``score`` (MaskFormer / Mask2Former give none) are kept. The pixels of the
    dropped segments become void, i.e. are not drawn.
    """
    if segments_info is None:
        return None
    return [s for s in segments_info if float(s.get("score", 1.0)) >= threshold]


def float32_fields(instances):
    """``instances`` with its reduced-precision floating-point fields (``scores``, ``pred_boxes``, ...)
    in float32.

    A model run at ``TEST.PRECISION`` bfloat16 or float16 may return such fields (MaskFormer's
    post-processing returns float32 anyway); drawing reads them through NumPy, which has no
    bfloat16. Other fields and float32 / float64 ones are left as they are.
    """
    if not hasattr(instances, "get_fields"):
        return instances
    for name, value in list(instances.get_fields().items()):
        tensor = getattr(value, "tensor", value)
        if isinstance(tensor, torch.Tensor) and tensor.dtype in (torch.bfloat16, torch.float16):
            if tensor is value:
                instances.set(name, value.float())
            else:
                value.tensor = tensor.float()
    return instances


def _class_scores(sem_seg: torch.Tensor) -> torch.Tensor:
    """(K, H, W) class scores as float32 on the CPU; ValueError for another shape."""
    if sem_seg.dim() != 3:
        raise ValueError(f"sem_seg must be (K, H, W) class scores, got shape {tuple(sem_seg.shape)}")
    return sem_seg.detach().float().cpu()


@dataclass(frozen=True)
class SemSegConfidence:
    """A semantic output reduced to what drawing it needs, for any threshold.

    Attributes:
        labels: int64 (H, W) top class of each pixel.
        probability: float32 (H, W) its probability (see :func:`sem_seg_to_labels`).
    """

    labels: torch.Tensor
    probability: torch.Tensor


def sem_seg_confidence(sem_seg: torch.Tensor) -> SemSegConfidence:
    """The top class of each pixel of (K, H, W) class scores and its probability.

    The per-pixel probability of class k is the score of k divided by the sum over classes
    when every score is non-negative (MaskFormer's semantic output, a sum of mask probabilities
    weighted by class probabilities), and a softmax over classes otherwise (per-pixel logits).

    Raises:
        ValueError: ``sem_seg`` is not 3-dimensional.
    """
    scores = _class_scores(sem_seg)
    if bool((scores >= 0).all()):
        probability = scores.max(dim=0).values / scores.sum(dim=0).clamp_min(1e-12)
    else:
        probability = scores.softmax(dim=0).max(dim=0).values
    return SemSegConfidence(labels=scores.argmax(dim=0), probability=probability)


def sem_seg_to_labels(sem_seg: Union[torch.Tensor, SemSegConfidence], threshold: float) -> torch.Tensor:
    """Per-pixel class from (K, H, W) class scores (or their :class:`SemSegConfidence`), with
    low-confidence pixels undrawn.

    Pixels whose top-class probability (see :func:`sem_seg_confidence`) is below ``threshold``
    get :data:`UNDRAWN_LABEL`.

    Returns:
        int64 (H, W) tensor on the CPU.

    Raises:
        ValueError: ``sem_seg`` is a tensor that is not 3-dimensional.
    """
    if isinstance(sem_seg, SemSegConfidence):
        confidence = sem_seg
    elif threshold > 0:
        confidence = sem_seg_confidence(sem_seg)
    else:  # every pixel is drawn: no probability needed
        return _class_scores(sem_seg).argmax(dim=0)
    labels = confidence.labels.clone()
    labels[confidence.probability < threshold] = UNDRAWN_LABEL
    return labels


def compact_predictions(predictions: dict) -> dict:
    """The drawable outputs of a model output dict, on the CPU and small enough to keep for redrawing.

    ``sem_seg`` ((K, H, W) scores: K times the image's size) becomes its :class:`SemSegConfidence`;
    ``panoptic_seg`` and ``instances`` are moved to the CPU. :meth:`VisualizationDemo.visualize` and
    :meth:`VisualizationDemo.legend` draw the result as they draw ``predictions``, at any threshold.
    """
    compact = {}
    if "sem_seg" in predictions:
        compact["sem_seg"] = sem_seg_confidence(predictions["sem_seg"])
    if "panoptic_seg" in predictions:
        panoptic_seg, segments_info = predictions["panoptic_seg"]
        compact["panoptic_seg"] = (panoptic_seg.cpu(), segments_info)
    if "instances" in predictions:
        compact["instances"] = float32_fields(predictions["instances"].to("cpu"))
    return compact


@dataclass(frozen=True)
class LegendEntry:
    """One row of a drawing's legend (see :meth:`VisualizationDemo.legend`).

    Attributes:
        name: the class name (``str(class index)`` without metadata).
        share: the fraction of the image's pixels it covers, in [0, 1].
        color: its class colour (RGB 0..255), or None for an instance (drawn in a palette colour of its own).
        score: the instance's or panoptic segment's score, None when the output has none.
    """

    name: str
    share: float
    color: Optional[Tuple[int, int, int]] = None
    score: Optional[float] = None


def _rgb(color) -> Tuple[int, int, int]:
    return tuple(int(round(float(c))) for c in color)


class VisualizationDemo:
    """Predict with a model and visualize the result (Detectron2's ``VisualizationDemo``).

    What is drawn: with ``draw="auto"`` the first output present of ``panoptic_seg``,
    ``instances``, ``sem_seg`` (as Mask2Former's demo); otherwise the output ``draw`` names.
    :meth:`visualize_all` draws every output present (a Mask2Former model returns all three when
    its semantic, panoptic and instance switches are on). ``confidence_threshold`` applies to
    all three: instances with a lower score and panoptic segments with a lower ``score`` are not
    drawn; for ``sem_seg``, pixels whose top-class probability is lower are left undrawn (see
    :func:`sem_seg_to_labels`).

    Args:
        cfg: a frozen config (``segcore.config.get_cfg()`` + family keys + file); None when both
            ``metadata`` and ``predictor`` are given (e.g. an exported model).
        instance_mode: a :class:`ColorMode`.
        parallel: run the model in separate processes (one per GPU, or one on CPU), so that
            drawing a video frame overlaps with predicting the next ones.
        confidence_threshold: minimum score in [0, 1] for something to be drawn.
        metadata: dataset metadata for names and colours; default
            ``MetadataCatalog.get(cfg.DATASETS.TEST[0])`` (or an empty one when there is none).
        predictor: a callable mapping an (H, W, 3) uint8 BGR image to the model's output dict;
            default ``segcore.engine.DefaultPredictor(cfg)`` (or :class:`AsyncPredictor`).
        draw: "auto" or one of :data:`DRAWABLE_OUTPUTS`: the output :meth:`visualize` and the
            video methods draw.

    Raises:
        ValueError: ``confidence_threshold`` outside [0, 1], or an unknown ``draw``.
    """

    def __init__(self, cfg, instance_mode: ColorMode = ColorMode.IMAGE, parallel: bool = False, *,
                 confidence_threshold: float = 0.5, metadata=None,
                 predictor: Optional[Callable[[np.ndarray], dict]] = None, draw: str = "auto"):
        if not 0.0 <= confidence_threshold <= 1.0:
            raise ValueError(f"confidence_threshold must be in [0, 1], got {confidence_threshold}")
        if draw != "auto" and draw not in DRAWABLE_OUTPUTS:
            raise ValueError(f"draw must be 'auto' or one of {list(DRAWABLE_OUTPUTS)}, got '{draw}'")
        self.draw = draw
        if metadata is None:
            from segcore.data import MetadataCatalog

            metadata = MetadataCatalog.get(cfg.DATASETS.TEST[0] if len(cfg.DATASETS.TEST) else "__unused")
        self.metadata = metadata
        self.cpu_device = torch.device("cpu")
        self.instance_mode = instance_mode
        self.confidence_threshold = float(confidence_threshold)
        self.parallel = parallel and predictor is None
        if predictor is not None:
            self.predictor = predictor
        elif parallel:
            self.predictor = AsyncPredictor(cfg, num_gpus=torch.cuda.device_count())
        else:
            from segcore.engine import DefaultPredictor

            self.predictor = DefaultPredictor(cfg)

    def output_to_draw(self, predictions: dict) -> str:
        """The key of ``predictions`` that :meth:`visualize` draws (see ``draw``).

        Raises:
            KeyError: the output asked for (or, with "auto", any drawable output) is missing.
        """
        if self.draw != "auto":
            if self.draw not in predictions:
                raise KeyError(f"The model output has no '{self.draw}' to draw (its keys are {sorted(predictions)}); "
                               "turn that output on in the config or draw another one")
            return self.draw
        for kind in DRAWABLE_OUTPUTS:
            if kind in predictions:
                return kind
        raise KeyError(f"The model output has none of {list(DRAWABLE_OUTPUTS)} to draw; its keys are {sorted(predictions)}")

    def _threshold(self, confidence_threshold: Optional[float]) -> float:
        """``confidence_threshold``, or the demo's when None.

        Raises:
            ValueError: a threshold outside [0, 1].
        """
        if confidence_threshold is None:
            return self.confidence_threshold
        if not 0.0 <= confidence_threshold <= 1.0:
            raise ValueError(f"confidence_threshold must be in [0, 1], got {confidence_threshold}")
        return float(confidence_threshold)

    def _draw(self, drawer: Union[Visualizer, VideoVisualizer], frame_rgb: Optional[np.ndarray],
              predictions: dict, kind: str, thr: float) -> VisImage:
        """Draw the output ``kind`` of one output dict at threshold ``thr``, with ``frame_rgb`` passed
        first for a VideoVisualizer."""
        args = () if frame_rgb is None else (frame_rgb,)
        if kind == "panoptic_seg":
            panoptic_seg, segments_info = predictions["panoptic_seg"]
            return drawer.draw_panoptic_seg(*args, panoptic_seg.to(self.cpu_device), filter_segments(segments_info, thr))
        if kind == "instances":
            instances = filter_instances(float32_fields(predictions["instances"].to(self.cpu_device)), thr)
            return drawer.draw_instance_predictions(*args, instances)
        return drawer.draw_sem_seg(*args, sem_seg_to_labels(predictions["sem_seg"], thr))

    def _kind(self, predictions: dict, kind: Optional[str]) -> str:
        """``kind``, or :meth:`output_to_draw`'s choice when None; KeyError when ``predictions`` lacks it."""
        kind = kind or self.output_to_draw(predictions)
        if kind not in predictions:
            raise KeyError(f"The model output has no '{kind}' to draw; its keys are {sorted(predictions)}")
        return kind

    def visualize(self, image_bgr: np.ndarray, predictions: dict, kind: Optional[str] = None, *,
                  confidence_threshold: Optional[float] = None) -> VisImage:
        """Draw one output of ``predictions`` (a model output dict, or its :func:`compact_predictions`)
        on ``image_bgr`` ((H, W, 3) uint8 BGR).

        Args:
            kind: the output to draw; None for :meth:`output_to_draw`'s choice.
            confidence_threshold: this drawing's threshold instead of the demo's (see the class).

        Raises:
            KeyError: the dict has no such output (or none this demo can draw).
            ValueError: a threshold outside [0, 1].
        """
        kind = self._kind(predictions, kind)
        visualizer = Visualizer(image_bgr[:, :, ::-1], self.metadata, instance_mode=self.instance_mode)
        return self._draw(visualizer, None, predictions, kind, self._threshold(confidence_threshold))

    def legend(self, predictions: dict, kind: Optional[str] = None, *,
               confidence_threshold: Optional[float] = None) -> List[LegendEntry]:
        """What :meth:`visualize` draws for the same arguments, as legend rows.

        Semantic output: one row per class drawn, with its colour, by decreasing share (the order of
        the legend drawn on the picture). Panoptic: one row per segment drawn (stuff and things), by
        decreasing share, with its score when it has one. Instances: one row per instance drawn, by
        decreasing score, without a colour (each instance gets a palette colour of its own).

        Raises:
            KeyError, ValueError: as :meth:`visualize`.
        """
        kind = self._kind(predictions, kind)
        thr = self._threshold(confidence_threshold)
        if kind == "panoptic_seg":
            panoptic_seg, segments_info = predictions["panoptic_seg"]
            pan = panoptic_seg.cpu().numpy()
            lookup = Visualizer(np.zeros(pan.shape + (3,), np.uint8), self.metadata)
            rows = []
            # the segments the Visualizer draws, as it finds them
            for seg in lookup._panoptic_segments(pan, filter_segments(segments_info, thr)):
                name, color = lookup._segment_name_color(int(seg["category_id"]), seg["isthing"])
                score = float(seg["score"]) if "score" in seg else None
                rows.append(LegendEntry(name, seg["area"] / pan.size, _rgb(color), score))
            return rows
        if kind == "instances":
            instances = filter_instances(float32_fields(predictions["instances"].to(self.cpu_device)), thr)
            height, width = instances.image_size
            lookup = Visualizer(np.zeros((height, width, 3), np.uint8), self.metadata)
            masks, _, _, classes = lookup._instance_style(instances)
            scores = instances.scores.tolist() if instances.has("scores") else [None] * len(instances)
            rows = []
            for i, score in enumerate(scores):
                name = lookup._thing_name_color(int(classes[i]))[0] if classes is not None else "object"
                share = float(masks[i].mean()) if masks is not None else 0.0
                rows.append(LegendEntry(name, share, None, score))
            return sorted(rows, key=lambda row: -(row.score or 0.0))
        labels = sem_seg_to_labels(predictions["sem_seg"], thr).numpy()
        lookup = Visualizer(np.zeros(labels.shape + (3,), np.uint8), self.metadata)
        ignore = getattr(self.metadata, "ignore_label", 255)
        stuff = getattr(self.metadata, "stuff_classes", None)
        values, counts = np.unique(labels, return_counts=True)
        rows = []
        for order in np.argsort(-counts, kind="stable"):  # draw_sem_seg's order and its undrawn labels
            label = int(values[order])
            if label < 0 or label == ignore or (stuff is not None and label >= len(stuff)):
                continue
            name, color = lookup._stuff_name_color(label)
            rows.append(LegendEntry(name, counts[order] / labels.size, _rgb(color)))
        return rows

    def visualize_all(self, image_bgr: np.ndarray, predictions: dict) -> Dict[str, VisImage]:
        """One drawing per drawable output present, keyed by the output's name (in :data:`DRAWABLE_OUTPUTS` order).

        Raises:
            KeyError: the dict has no output this demo can draw.
        """
        kinds = [k for k in DRAWABLE_OUTPUTS if k in predictions]
        if not kinds:
            raise KeyError(f"The model output has none of {list(DRAWABLE_OUTPUTS)} to draw; "
                           f"its keys are {sorted(predictions)}")
        return {kind: self.visualize(image_bgr, predictions, kind) for kind in kinds}

    def run_on_image(self, image: np.ndarray) -> Tuple[dict, VisImage]:
        """Predict on one image and draw the result.

        Args:
            image: (H, W, 3) uint8 image in BGR order (OpenCV's).

        Returns:
            (predictions, vis_output): the model's output dict (unfiltered) and the drawing.
        """
        predictions = self.predictor(image)
        return predictions, self.visualize(image, predictions)

    def run_on_video(self, video, *, confidence_threshold: Optional[float] = None,
                     max_frames: Optional[int] = None) -> Iterator[np.ndarray]:
        """Predict on every frame of a video and draw the results, with stable instance colours.

        Args:
            video: an opened ``cv2.VideoCapture`` (file or webcam), a video path or a webcam index.
            confidence_threshold: the threshold of these drawings instead of the demo's.
            max_frames: stop after this many frames (None: all).

        Yields:
            (H, W, 3) uint8 BGR drawings, one per frame.
        """
        video_visualizer = VideoVisualizer(self.metadata, self.instance_mode)
        thr = self._threshold(confidence_threshold)

        def process(frame: np.ndarray, predictions: dict) -> np.ndarray:
            vis = self._draw(video_visualizer, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), predictions,
                             self.output_to_draw(predictions), thr)
            return cv2.cvtColor(vis.get_image(), cv2.COLOR_RGB2BGR)

        frames = iter_frames(video, max_frames)
        if not self.parallel:
            for frame in frames:
                yield process(frame, self.predictor(frame))
            return
        buffer_size = self.predictor.default_buffer_size
        pending = deque()
        for count, frame in enumerate(frames):
            pending.append(frame)
            self.predictor.put(frame)
            if count >= buffer_size:
                yield process(pending.popleft(), self.predictor.get())
        while pending:
            yield process(pending.popleft(), self.predictor.get())


class _StopToken:
    pass


class _PredictWorker(mp.get_context("spawn").Process):
    """A process that builds a predictor from ``cfg`` and answers (index, image) tasks."""

    def __init__(self, cfg, task_queue, result_queue):
        self.cfg = cfg
        self.task_queue = task_queue
        self.result_queue = result_queue
        super().__init__(daemon=True)

    def run(self):
        from segcore.config.families import get_model_families
        from segcore.engine import DefaultPredictor

        get_model_families()  # a spawned process starts with empty registries: loading them registers
        predictor = DefaultPredictor(self.cfg)
        while True:
            task = self.task_queue.get()
            if isinstance(task, _StopToken):
                break
            idx, image = task
            self.result_queue.put((idx, predictor(image)))


class AsyncPredictor:
    """A predictor running the model in worker processes (Detectron2's ``AsyncPredictor``).

    One worker per GPU (``cuda:i``), or one on the CPU when ``num_gpus`` is 0. Images are
    submitted with :meth:`put` and results returned by :meth:`get` in submission order.
    The workers are started with the ``spawn`` method, so CUDA works in them.

    Args:
        cfg: the config; each worker builds ``DefaultPredictor`` from a copy with its device.
        num_gpus: number of GPUs to use (0: CPU).
    """

    def __init__(self, cfg, num_gpus: int = 1):
        ctx = mp.get_context("spawn")
        num_workers = max(num_gpus, 1)
        self.task_queue = ctx.Queue(maxsize=num_workers * 3)
        self.result_queue = ctx.Queue(maxsize=num_workers * 3)
        self.procs = []
        for gpuid in range(num_workers):
            worker_cfg = cfg.clone()
            worker_cfg.defrost()
            worker_cfg.MODEL.DEVICE = f"cuda:{gpuid}" if num_gpus > 0 else "cpu"
            worker_cfg.freeze()
            self.procs.append(_PredictWorker(worker_cfg, self.task_queue, self.result_queue))
        self.put_idx = 0
        self.get_idx = 0
        self.result_rank: List[int] = []
        self.result_data: List[dict] = []
        for p in self.procs:
            p.start()
        atexit.register(self.shutdown)

    def put(self, image: np.ndarray) -> None:
        """Submit one (H, W, 3) uint8 BGR image."""
        self.put_idx += 1
        self.task_queue.put((self.put_idx, image))

    def get(self) -> dict:
        """The output for the oldest submitted image not yet returned."""
        self.get_idx += 1
        if self.result_rank and self.result_rank[0] == self.get_idx:
            res = self.result_data.pop(0)
            self.result_rank.pop(0)
            return res
        while True:
            idx, res = self.result_queue.get()
            if idx == self.get_idx:
                return res
            pos = bisect.bisect(self.result_rank, idx)
            self.result_rank.insert(pos, idx)
            self.result_data.insert(pos, res)

    def __len__(self) -> int:
        return self.put_idx - self.get_idx

    def __call__(self, image: np.ndarray) -> dict:
        self.put(image)
        return self.get()

    def shutdown(self) -> None:
        """Ask every worker to stop."""
        for _ in self.procs:
            self.task_queue.put(_StopToken())

    @property
    def default_buffer_size(self) -> int:
        """How many frames :meth:`VisualizationDemo.run_on_video` keeps in flight."""
        return len(self.procs) * 5
