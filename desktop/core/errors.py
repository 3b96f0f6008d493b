"""Errors a person can act on: each carries a one-line message the CLI prints as is."""


class GroundedError(Exception):
    """A user-facing error (bad input, missing file, mismatched index); never a bug."""


class EmbedderMismatch(GroundedError):
    """The index was built with another embedder; re-embedding is needed."""


class AdapterError(GroundedError):
    """A LoRA adapter file that is not one, is damaged, or does not fit the model."""
