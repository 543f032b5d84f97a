"""``@configurable``: build a module either from explicit keyword arguments or from a config.

Follows Detectron2's ``detectron2.config.configurable``: a class whose ``__init__`` is decorated
gets a classmethod ``from_config(cls, cfg, ...)`` that maps a config to ``__init__`` arguments;
``Cls(cfg, ...)`` then means ``Cls(**Cls.from_config(cfg, ...))`` while ``Cls(a=..., b=...)``
works without any config. Functions can be decorated with ``@configurable(from_config=fn)``.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

__all__ = ["configurable"]


def _is_cfg(obj: Any) -> bool:
    from fvcore.common.config import CfgNode as _Fv

    return isinstance(obj, _Fv)


def _looks_like_cfg_call(args: tuple, kwargs: dict) -> bool:
    if args and _is_cfg(args[0]):
        return True
    return _is_cfg(kwargs.get("cfg"))


def _get_args_from_config(from_config_func: Callable, *args, **kwargs) -> dict:
    signature = inspect.signature(from_config_func)
    if next(iter(signature.parameters)) != "cfg":
        name = getattr(from_config_func, "__qualname__", repr(from_config_func))
        raise TypeError(f"{name} must take 'cfg' as its first argument")
    support_var_arg = any(
        p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in signature.parameters.values()
    )
    if support_var_arg:
        return from_config_func(*args, **kwargs)
    supported = set(signature.parameters.keys())
    extra = {name: kwargs.pop(name) for name in list(kwargs.keys()) if name not in supported}
    ret = from_config_func(*args, **kwargs)
    ret.update(extra)  # forwarded to __init__ as explicit overrides
    return ret


def configurable(init_func: Callable | None = None, *, from_config: Callable | None = None):
    """Decorate a class ``__init__`` or a function so it can be called with a config.

    Usage::

        class Head(nn.Module):
            @configurable
            def __init__(self, *, in_channels: int, num_classes: int): ...

            @classmethod
            def from_config(cls, cfg, input_shape):
                return {"in_channels": input_shape.channels, "num_classes": cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES}

        Head(cfg, input_shape)               # from the config
        Head(in_channels=3, num_classes=10)  # explicitly

    Raises:
        TypeError: the class has no ``from_config`` classmethod, or ``from_config`` does not
            take ``cfg`` first.
    """
    if init_func is not None:
        if not (inspect.isfunction(init_func) and from_config is None and init_func.__name__ == "__init__"):
            raise TypeError("@configurable without arguments must decorate a class __init__")

        @functools.wraps(init_func)
        def wrapped(self, *args, **kwargs):
            from_config_func = getattr(type(self), "from_config", None)
            if from_config_func is None:
                raise TypeError(f"{type(self).__name__} uses @configurable but has no 'from_config' classmethod")
            if not inspect.ismethod(from_config_func):
                raise TypeError(f"{type(self).__name__}.from_config must be a classmethod")
            if _looks_like_cfg_call(args, kwargs):
                explicit_args = _get_args_from_config(from_config_func, *args, **kwargs)
                init_func(self, **explicit_args)
            else:
                init_func(self, *args, **kwargs)

        return wrapped

    if from_config is None:
        return configurable  # @configurable() with no arguments
    if not inspect.isfunction(from_config):
        raise TypeError("from_config argument of configurable must be a function")

    def wrapper(orig_func):
        @functools.wraps(orig_func)
        def wrapped(*args, **kwargs):
            if _looks_like_cfg_call(args, kwargs):
                explicit_args = _get_args_from_config(from_config, *args, **kwargs)
                return orig_func(**explicit_args)
            return orig_func(*args, **kwargs)

        wrapped.from_config = from_config
        return wrapped

    return wrapper
