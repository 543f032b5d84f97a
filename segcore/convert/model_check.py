"""Checking converted weights against the model they are for: the same names, the same shapes."""
from __future__ import annotations

from typing import List, Mapping, Optional, Sequence, Tuple

import torch

__all__ = ["build_model_of_config", "check_names_and_shapes"]


def check_names_and_shapes(weights: Mapping[str, torch.Tensor], model_state: Mapping[str, torch.Tensor], *,
                           sources: Optional[Mapping[str, List[str]]] = None) -> None:
    """Require ``weights`` to have exactly the names and shapes of ``model_state`` (a model's
    ``state_dict()``), so that a strict load succeeds.

    Args:
        weights: the converted {name: tensor}.
        model_state: the model's {name: tensor}.
        sources: optional {converted name: the source names it was made from} ([] for a computed
            entry), quoted in the messages.

    Raises:
        ValueError: every shape that differs (``"shapes differ: 'name' (converted shape) (from
            [source names]) but the model has (shape)"``), every name missing from the converted
            weights and every name the model does not have, one per line.
    """
    sources = sources or {}

    def origin(name: str) -> str:
        if name not in sources:
            return ""
        return f" (from {sources[name] or 'computed'})"

    lines = [f"shapes differ: '{k}' {tuple(weights[k].shape)}{origin(k)} but the model has {tuple(model_state[k].shape)}"
             for k in weights if k in model_state and weights[k].shape != model_state[k].shape]
    lines += [f"not in the converted weights: {k}" for k in sorted(set(model_state) - set(weights))]
    lines += [f"not in the model: {k}{origin(k)}" for k in sorted(set(weights) - set(model_state))]
    if lines:
        raise ValueError("the converted weights do not fit the model of the config:\n  " + "\n  ".join(lines))


def build_model_of_config(config_file: str, opts: Sequence[str] = ()) -> Tuple[object, torch.nn.Module]:
    """The config (:func:`segcore.engine.setup_cfg`, with ``opts`` then ``MODEL.DEVICE cpu``) and
    the model it describes, built on the CPU in eval mode, no weights loaded: what converted weights
    are checked against.

    Raises:
        segcore.config.ConfigError: see :func:`segcore.engine.setup_cfg`.
    """
    from segcore.engine import setup_cfg
    from segcore.modeling import build_model

    cfg = setup_cfg(config_file, [*opts, "MODEL.DEVICE", "cpu"])
    return cfg, build_model(cfg).eval()
