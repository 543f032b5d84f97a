"""Parameter count of a model (fvcore's ``parameter_count``), as the original tools report it."""
from __future__ import annotations

from dataclasses import dataclass

from fvcore.nn import parameter_count, parameter_count_table
from torch import nn

__all__ = ["ParameterCount", "count_parameters"]


@dataclass
class ParameterCount:
    """Attributes: total: number of parameter elements (buffers excluded); table: fvcore's
    per-module table."""

    total: int
    table: str


def count_parameters(model: nn.Module, max_depth: int = 3) -> ParameterCount:
    """Parameter elements of ``model`` (every ``nn.Parameter``, frozen ones included; shared ones
    once), and fvcore's table of the modules up to ``max_depth`` levels deep."""
    return ParameterCount(total=int(parameter_count(model)[""]),
                          table=parameter_count_table(model, max_depth=max_depth))
