"""Model analysis: parameter and FLOP counts (``tools/analyze_model.py`` is their command line).

- :mod:`.flop_count`: :func:`count_flops` and :class:`FlopCountAnalysis` (what is counted, and how
  the original MaskFormer / Mask2Former tools counted, is in its docstring);
- :mod:`.flop_handles`: the FLOP formulas added to fvcore's (matrix products with an extra operand,
  fused attention), :func:`register_flop_handle` for a family's own operators;
- :mod:`.model_inputs`: the test-set or synthetic inputs FLOPs are counted on;
- :mod:`.parameter_count`: :func:`count_parameters`.
"""
from .flop_count import FlopCount, FlopCountAnalysis, ImageInputWrapper, count_flops
from .flop_handles import IGNORED_OPS, flop_handle_table, register_flop_handle
from .model_inputs import dataset_inputs, fixed_input_size, flop_inputs, synthetic_inputs
from .parameter_count import ParameterCount, count_parameters

__all__ = ["FlopCount", "FlopCountAnalysis", "IGNORED_OPS", "ImageInputWrapper", "ParameterCount",
           "count_flops", "count_parameters", "dataset_inputs", "fixed_input_size", "flop_handle_table",
           "flop_inputs", "register_flop_handle", "synthetic_inputs"]
