"""Run a model on an image or video frames and draw what it predicts.

As Detectron2's / Mask2Former's ``demo/predictor.py`` (``VisualizationDemo``, ``AsyncPredictor``),
with a confidence threshold that applies to every kind of output (see :class:`VisualizationDemo`).
"""
from __future__ import annotations

import atexit
import bisect
import multiprocessing as mp
from collections import deque
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

import cv2
import numpy as np
import torch

from segcore.utils.video import iter_frames
from segcore.utils.video_visualizer import VideoVisualizer
from segcore.utils.visualizer import ColorMode, VisImage, Visualizer

__all__ = ["AsyncPredictor", "DRAWABLE_OUTPUTS", "VisualizationDemo", "filter_instances", "filter_segments",
           "float32_fields", "sem_seg_to_labels"]

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


def sem_seg_to_labels(sem_seg: torch.Tensor, threshold: float) -> torch.Tensor:
    """Per-pixel class from (K, H, W) class scores, with low-confidence pixels undrawn.

    The per-pixel probability of class k is the score of k divided by the sum over classes
    when every score is non-negative (MaskFormer's semantic output, a sum of mask probabilities
    weighted by class probabilities), and a softmax over classes otherwise (per-pixel logits).
    Pixels whose top-class probability is below ``threshold`` get :data:`UNDRAWN_LABEL`.

    Returns:
        int64 (H, W) tensor on the CPU.

    Raises:
        ValueError: ``sem_seg`` is not 3-dimensional.
    """
    if sem_seg.dim() != 3:
        raise ValueError(f"sem_seg must be (K, H, W) class scores, got shape {tuple(sem_seg.shape)}")
    scores = sem_seg.detach().float().cpu()
    labels = scores.argmax(dim=0)
    if threshold > 0:
        if bool((scores >= 0).all()):
            prob = scores.max(dim=0).values / scores.sum(dim=0).clamp_min(1e-12)
        else:
            prob = scores.softmax(dim=0).max(dim=0).values
        labels[prob < threshold] = UNDRAWN_LABEL
    return labels


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
        cfg: a frozen config (``segcore.config.get_cfg()`` + family keys + file).
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

    def _draw(self, drawer: Union[Visualizer, VideoVisualizer], frame_rgb: Optional[np.ndarray],
              predictions: dict, kind: str) -> VisImage:
        """Draw the output ``kind`` of one output dict, with ``frame_rgb`` passed first for a VideoVisualizer."""
        args = () if frame_rgb is None else (frame_rgb,)
        thr = self.confidence_threshold
        if kind == "panoptic_seg":
            panoptic_seg, segments_info = predictions["panoptic_seg"]
            return drawer.draw_panoptic_seg(*args, panoptic_seg.to(self.cpu_device), filter_segments(segments_info, thr))
        if kind == "instances":
            instances = filter_instances(float32_fields(predictions["instances"].to(self.cpu_device)), thr)
            return drawer.draw_instance_predictions(*args, instances)
        return drawer.draw_sem_seg(*args, sem_seg_to_labels(predictions["sem_seg"], thr))

    def visualize(self, image_bgr: np.ndarray, predictions: dict, kind: Optional[str] = None) -> VisImage:
        """Draw one output of ``predictions`` (a model output dict) on ``image_bgr`` ((H, W, 3) uint8 BGR).

        Args:
            kind: the output to draw; None for :meth:`output_to_draw`'s choice.

        Raises:
            KeyError: the dict has no such output (or none this demo can draw).
        """
        kind = kind or self.output_to_draw(predictions)
        if kind not in predictions:
            raise KeyError(f"The model output has no '{kind}' to draw; its keys are {sorted(predictions)}")
        visualizer = Visualizer(image_bgr[:, :, ::-1], self.metadata, instance_mode=self.instance_mode)
        return self._draw(visualizer, None, predictions, kind)

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

    def run_on_video(self, video) -> Iterator[np.ndarray]:
        """Predict on every frame of a video and draw the results, with stable instance colours.

        Args:
            video: an opened ``cv2.VideoCapture`` (file or webcam), a video path or a webcam index.

        Yields:
            (H, W, 3) uint8 BGR drawings, one per frame.
        """
        video_visualizer = VideoVisualizer(self.metadata, self.instance_mode)

        def process(frame: np.ndarray, predictions: dict) -> np.ndarray:
            vis = self._draw(video_visualizer, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), predictions,
                             self.output_to_draw(predictions))
            return cv2.cvtColor(vis.get_image(), cv2.COLOR_RGB2BGR)

        frames = iter_frames(video)
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
