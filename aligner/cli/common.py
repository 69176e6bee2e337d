"""Shared pieces of the ``aligner`` commands: the command class that turns
errors into exit codes, output helpers, and the options several commands
declare (each declared once here).

Nothing heavy is imported at module level: ``aligner --help`` must stay fast,
so torch, numpy and the pipeline are imported inside the
commands.
"""

from __future__ import annotations

import math
import sys
import traceback
import warnings
from collections.abc import Callable
from typing import IO, Any, TextIO

import click

from ..errors import AlignerError, OutputError

#: What an option helper returns: a decorator of click commands.
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1
EXIT_SOME_FAILED = 3
EXIT_INTERRUPTED = 130


def fail(message: str, code: int) -> None:
    click.echo(message, err=True)
    sys.exit(code)


def write_stdout(text: str) -> None:
    """Write ``text`` to standard output and flush it; a closed or failing
    standard output is an :class:`OutputError`, not a silent success."""
    stream = sys.stdout
    if stream is None:
        raise OutputError("standard output is closed; give an output file with -o")
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise OutputError(f"cannot write to standard output: {reason}") from error


def show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    click.echo(f"warning: {message}", err=True)


class AlignerCommand(click.Command):
    """Turns package errors into exit code 2 and crashes into exit code 1; a
    native dependency that fails to load (a broken install) is exit code 2
    with one line saying how to fix it (:mod:`aligner.environment`)."""

    def invoke(self, ctx: click.Context) -> Any:
        warnings.showwarning = show_warning
        try:
            return super().invoke(ctx)
        except AlignerError as error:
            fail(f"error: {error}", EXIT_BAD_INPUT)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt:
            fail("interrupted", EXIT_INTERRUPTED)
        except Exception as error:  # noqa: BLE001 - the last line of defence
            if ctx.find_root().params.get("debug"):
                traceback.print_exc()
            from ..environment import explain

            environment = explain(error)  # torch, torchaudio, numba... failing to load: the install, not a bug
            if environment is not None:
                fail(f"error: {environment}", EXIT_BAD_INPUT)
            fail(f"internal error: {type(error).__name__}: {error} (run with --debug for a traceback)", EXIT_INTERNAL)


def command(name: str | None = None) -> Callable[[Callable[..., Any]], click.Command]:
    """``@click.command`` with :class:`AlignerCommand`."""
    return click.command(name, cls=AlignerCommand)


# --------------------------------------------------------------------------- number checks


class OptionValueError(click.BadParameter):
    """A number outside its option's range, reported like the package's own
    errors: one line ``error: ...``, exit code 2 (no usage block)."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.message}", file=file, err=file is None)


def _option_name(param: click.Parameter | None) -> str:
    if param is None:
        return "the value"
    return next((opt for opt in getattr(param, "opts", ()) if opt.startswith("--")), param.name or "the value")


class _OneLineRange(click.ParamType):
    """Mixin for click's number ranges: a value that is not a number is
    click's usual usage error; a number out of range (or NaN) is one line
    built from ``message`` (``{option}``, ``{value}``, ``{min}``, ``{max}``);
    NaN and infinities are refused as not finite, whatever the range.
    (It derives from :class:`click.ParamType`, which click's ranges follow in
    the method resolution order, so that type checkers know ``convert``.)"""

    _parse: click.ParamType
    min: Any  # set by click's range __init__
    max: Any

    def __init__(self, *args: Any, message: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.message = message

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            number = super().convert(value, param, ctx)
        except click.BadParameter:
            number = self._parse.convert(value, param, ctx)  # not a number: click's own message
        else:
            if not (isinstance(number, float) and not math.isfinite(number)):
                return number
        if isinstance(number, float) and not math.isfinite(number):
            raise OptionValueError(f"{_option_name(param)} must be a finite number, got {number}", ctx=ctx, param=param)
        raise OptionValueError(
            self.message.format(option=_option_name(param), value=number, min=self.min, max=self.max),
            ctx=ctx,
            param=param,
        )


class IntRange(_OneLineRange, click.IntRange):
    """:class:`click.IntRange` whose out-of-range message is one ``error:`` line."""

    _parse = click.INT


class FloatRange(_OneLineRange, click.FloatRange):
    """:class:`click.FloatRange` whose out-of-range (or NaN, or infinite) message is one ``error:`` line."""

    _parse = click.FLOAT


class Finite(click.ParamType):
    """A float option that must be a finite number: NaN and infinities are
    refused with one line naming the option (exit code 2); text that is not
    a number is click's usual usage error."""

    name = "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            raise OptionValueError(f"{_option_name(param)} must be a finite number, got {number}", ctx=ctx, param=param)
        return number


#: The type of every float option without a range: finite numbers only.
FINITE = Finite()


def at_least(low: int, message: str = "{option} must be at least {min}, got {value}") -> IntRange:
    """An integer option of at least ``low``."""
    return IntRange(min=low, message=message)


def positive(message: str = "{option} must be positive, got {value}") -> FloatRange:
    """A number option above 0 (NaN and infinity refused)."""
    return FloatRange(min=0, min_open=True, message=message)


def within(low: float, high: float, message: str = "{option} must be in [{min}, {max}], got {value}") -> FloatRange:
    """A number option in ``[low, high]`` (NaN refused)."""
    return FloatRange(min=low, max=high, message=message)


# --------------------------------------------------------------------------- shared options

MODEL_HELP = "Model: TRELLIS_EN_PHONES (default), a torchaudio bundle name (see `aligner models`) or a model folder."
DEVICE_HELP = "cpu, cuda, cuda:N (default: CUDA when available)."
DTYPES = ["float32", "bfloat16", "float16", "bf16", "fp16", "onnx", "onnx-int8"]
DTYPE_HELP = (
    "Inference precision (default: bfloat16 on GPU, float32 on CPU). onnx: ONNX Runtime on the CPU, float32 "
    "(same results); onnx-int8: ONNX Runtime with int8 linear layers (approximate); both need "
    'pip install "trellis-align[onnx]" and export the model once into a cache.'
)
PARTIAL_HELP = (
    "Tolerate audio without text and text without audio (star/wildcard); words that cannot be placed are flagged."
)

REFINE_HELP = (
    "Move each word boundary at a pause (and the first start and last end) up to 60 ms to where the audio's "
    "energy says speech starts or stops. Off by default: it measured even or worse with the default phone model "
    "and with a CTC character model (MODEL.md); meant for the pause edges of CTC models such as MMS_FA."
)


def model_option(help: str = MODEL_HELP) -> Decorator:
    """``--model/-m SPEC`` (parameter ``model_spec``; None = the default model)."""
    return click.option("--model", "-m", "model_spec", default=None, help=help)


def device_option(help: str = DEVICE_HELP) -> Decorator:
    """``--device cpu|cuda|cuda:N`` (None = CUDA when available)."""
    return click.option("--device", default=None, help=help)


def dtype_option(help: str = DTYPE_HELP) -> Decorator:
    """``--dtype`` of inference (None = bfloat16 on GPU, float32 on CPU;
    ``onnx``/``onnx-int8``: the ONNX Runtime backend, see
    :mod:`aligner.models.onnx_backend`)."""
    if help != DTYPE_HELP:
        help = f"{help} onnx / onnx-int8: ONNX Runtime on the CPU, float32 / int8 linear layers (extra 'onnx')."
    return click.option("--dtype", default=None, type=click.Choice(DTYPES), help=help)


def partial_option() -> Decorator:
    """``--partial``: tolerate audio without text and text without audio."""
    return click.option("--partial", is_flag=True, help=PARTIAL_HELP)


VTL_WARPS_HELP = (
    "Run the network once per vocal-tract-length warp of the spectrum and average its outputs, e.g. 0.85,1,1.15 "
    "(3x the network's time; more accurate on every evaluation set, see MODEL.md). Models with a log-mel front "
    "end (the packaged one) only."
)


class _Warps(click.ParamType):
    """Comma-separated numbers (their range is checked by the emission stage)."""

    name = "W[,W...]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[float, ...]:
        if isinstance(value, tuple):
            return value
        try:
            warps = tuple(float(part) for part in str(value).split(","))
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of numbers", param, ctx)
        if not all(math.isfinite(warp) for warp in warps):
            raise OptionValueError(f"{_option_name(param)} must be finite numbers, got {value}", ctx=ctx, param=param)
        return warps


def vtl_warps_option() -> Decorator:
    """``--vtl-warps W[,W...]`` (parameter ``vtl_warps``, default ``(1.0,)``: one pass)."""
    return click.option("--vtl-warps", "vtl_warps", type=_Warps(), default="1", show_default=True, help=VTL_WARPS_HELP)


VTLN_HELP = (
    "Vocal-tract-length normalization: align each speaker (each file for align; each first-level folder for "
    "align-corpus, on up to 20 s of its audio) with the spectral warp, from 0.80 to 1.25, under which its forced "
    "alignment is most likely. Models with a log-mel front end (the packaged one) only."
)


def vtln_option() -> Decorator:
    """``--vtln`` (parameter ``vtln``): warps chosen by likelihood (:mod:`aligner.vtln`)."""
    return click.option("--vtln", is_flag=True, help=VTLN_HELP)


def refine_option() -> Decorator:
    """``--refine/--no-refine``: boundary refinement (:mod:`aligner.refine`), off by default."""
    return click.option("--refine/--no-refine", default=False, show_default=True, help=REFINE_HELP)


def subtitles_option() -> Decorator:
    """``--subtitles words|lines``: the SRT/VTT cues."""
    return click.option(
        "--subtitles",
        type=click.Choice(["words", "lines"]),
        default="lines",
        show_default=True,
        help="SRT/VTT cues: one per word, or lines of words.",
    )


def quiet_option(help: str = "No progress bar.") -> Decorator:
    """``--quiet/-q``."""
    return click.option("--quiet", "-q", is_flag=True, help=help)


def workers_option(help: str, default: int | None = 2, minimum: int | None = 1) -> Decorator:
    """``--workers N``: at least ``minimum`` (None: any integer, checked by
    the library)."""
    kind = int if minimum is None else at_least(minimum, "{option} must be >= {min}, got {value}")
    return click.option("--workers", type=kind, default=default, show_default=default is not None, help=help)


def batch_seconds_option(default: float | None = None) -> Decorator:
    """``--batch-seconds S``: padded audio per batch (checked by the library)."""
    return click.option(
        "--batch-seconds",
        type=FINITE,
        default=default,
        show_default=default is not None,
        help="Padded audio per batch, in seconds.",
    )
