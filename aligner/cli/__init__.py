"""The ``aligner`` command line: the group :func:`main` and its commands,
one module each (``align``, ``align_corpus``, ``validate``, ``models``,
``plot``, ``view``, ``layers``, ``train``) over the shared options and
error handling of :mod:`aligner.cli.common`. Heavy modules (torch, the
pipeline) are imported inside the commands, so ``aligner --help`` stays fast.

Exit codes: 0 success, 2 bad input (one line naming the file and the
problem), 1 internal error, 3 some files of a corpus failed (``align-corpus``,
``validate``: the others were processed), 130 interrupted.
"""

from __future__ import annotations

import click

from .align import align
from .align_corpus import align_corpus
from .common import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_SOME_FAILED, AlignerCommand
from .layers import layers
from .models import models
from .plot import plot
from .train import train
from .validate import validate
from .view import view

__all__ = ["main", "AlignerCommand", "EXIT_BAD_INPUT", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_SOME_FAILED"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Print a traceback for internal errors.")
@click.version_option(package_name="trellis-align")
def main(debug: bool) -> None:
    """Forced alignment of speech to text with wav2vec 2.0 / HuBERT / MMS models."""


for _command in (align, models, train, plot, view, layers, align_corpus, validate):
    main.add_command(_command)
