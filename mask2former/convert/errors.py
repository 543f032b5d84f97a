"""The error of a model that the other implementation cannot reproduce."""

__all__ = ["UnsupportedModelError"]


class UnsupportedModelError(ValueError):
    """A configuration (Hugging Face's or ours) that the other implementation cannot reproduce; the
    message lists every feature found."""
