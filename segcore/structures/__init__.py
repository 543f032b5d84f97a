"""Data structures passed between data, models and evaluators."""
from .boxes import Boxes, BoxMode
from .image_list import ImageList
from .instances import Instances
from .masks import BitMasks, PolygonMasks, boxes_from_occupancy, polygon_area, polygons_to_bitmask, rle_to_bitmask

__all__ = ["BitMasks", "BoxMode", "Boxes", "ImageList", "Instances", "PolygonMasks", "boxes_from_occupancy",
           "polygon_area", "polygons_to_bitmask", "rle_to_bitmask"]
