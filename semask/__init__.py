"""SeMask (Jain et al., "SeMask: Semantically Masked Transformers for Semantic Segmentation", 2021),
built on :mod:`mask_former` and :mod:`mask2former`."""
from .config import add_semask_config

__all__ = ["add_semask_config"]
