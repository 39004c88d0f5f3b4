"""Named errors raised by the model side (no torch import here)."""


class UnknownModelError(ValueError):
    """A model name or preset that is not registered."""


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or whose keys/shapes do not match the model."""
