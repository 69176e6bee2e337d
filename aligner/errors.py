"""One error hierarchy for everything the package raises on bad input.

Every error a user can cause derives from :class:`AlignerError`. The CLI
turns these into a one-line message and exit code 2; anything else is an
internal error (exit code 1).
"""

from __future__ import annotations


class AlignerError(Exception):
    """Base class: bad input or an environment problem the user can fix."""


class AudioError(AlignerError):
    """Audio file missing, unreadable, empty or otherwise unusable."""


class TranscriptError(AlignerError):
    """Transcript missing, empty, undecodable or not representable."""


class TranscriptTooLongError(TranscriptError):
    """A transcript that cannot fit its audio: more tokens (or words, or
    characters, :mod:`aligner.fits`) than the recording can hold."""


class ModelError(AlignerError):
    """A model spec that cannot be resolved or loaded."""


class ModelNotAvailableError(ModelError):
    """Weights are not cached locally and cannot be downloaded (offline)."""


class ModelConfigError(ModelError, ValueError):
    """A setting of a model's configuration is out of range (a front end's
    option, an unknown front end). Also a :class:`ValueError`, as it was
    before it joined this hierarchy."""


class AlignmentError(AlignerError, ValueError):
    """Inputs to the aligner are inconsistent (shapes, lengths, targets).

    Also a :class:`ValueError`, so callers of :func:`aligner.forced_align`
    can catch the standard exception type.
    """


class TextGridError(AlignerError, ValueError):
    """A TextGrid that cannot be read: missing, unreadable, malformed, or
    lacking the tier asked for."""


class OutputError(AlignerError):
    """An output file cannot be written (unknown format, bad path)."""


class CorpusError(AlignerError, ValueError):
    """A corpus folder that is missing, empty or unusable, or a bad argument
    to the synthetic corpus generator."""


class TrainingError(AlignerError):
    """A training option, configuration or saved training state is unusable."""


class EnvironmentBrokenError(AlignerError):
    """A native dependency (torch, torchaudio, numba, soundfile, ...) is
    installed but cannot be loaded, or is missing: the installation, not the
    input, needs fixing. The message names the installed versions, the
    likely cause and the command that fixes it."""
