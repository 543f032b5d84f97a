"""Data structures passed between data, models and evaluators."""
from .boxes import Boxes, BoxMode
from .image_list import ImageList
from .instances import Instances
from .masks import BitMasks

__all__ = ["BitMasks", "BoxMode", "Boxes", "ImageList", "Instances"]
