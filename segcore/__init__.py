"""segcore: the Detectron2-style engine (model-agnostic)."""
__version__ = "0.1.0"
