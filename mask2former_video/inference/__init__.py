"""Video inference: the original's ``inference_video`` (:class:`VideoInstancePostProcessor`), the
per-frame :class:`~segcore.structures.Instances` view (:func:`frame_instances`), and windowed
inference of long videos (:class:`WindowedVideoInference`)."""
from .video_instances import VIDEO_TOPK, VideoInstancePostProcessor, frame_instances, select_top_pairs, tube_masks
from .windowed import WindowedVideoInference, link_queries

__all__ = ["VIDEO_TOPK", "VideoInstancePostProcessor", "WindowedVideoInference", "frame_instances", "link_queries",
           "select_top_pairs", "tube_masks"]
