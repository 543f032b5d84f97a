"""Padding sizes written so that ``torch.export`` keeps them simple symbolic expressions."""
from __future__ import annotations

__all__ = ["ceil_to_multiple"]


def ceil_to_multiple(size, multiple: int):
    """``size`` rounded up to a multiple of ``multiple`` (``multiple <= 1``: ``size`` unchanged).

    Works on Python and symbolic integers alike. Written as ``(size + m - 1) // m * m``, so that a
    symbolic size becomes the monomial ``m * k``: divided by ``m`` (window partitions, strided
    convolutions, patch merging) it simplifies to ``k``. The equivalent ``size + (-size) % m``
    leaves nested remainders that ``torch.export``'s symbolic reasoning cannot simplify, which makes
    tracing a Swin backbone with a dynamic image size take tens of minutes.

    Args:
        size: a non-negative int or ``torch.SymInt`` (pixels, tokens).
        multiple: int.
    """
    if multiple <= 1:
        return size
    return (size + multiple - 1) // multiple * multiple
