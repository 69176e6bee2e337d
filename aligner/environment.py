"""Whether the compiled dependencies load: a clear error for a broken install.

torch, torchaudio, numba, soundfile and the other dependencies with native
libraries are imported lazily, where they are needed. When one of them is
missing or cannot be loaded (a torchaudio built for another torch release:
``libtorchaudio.so: undefined symbol ...``; a numba built for another
numpy), :func:`require` and :func:`explain` turn the failure into an
:class:`~aligner.errors.EnvironmentBrokenError`: one line naming the
installed versions (from the package metadata, nothing imported), the likely
cause and the command that fixes it, with the versions this package pins
read from its own metadata.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Iterator
from importlib import metadata
from types import TracebackType

from .errors import EnvironmentBrokenError

#: This package's distribution (its requirements carry the tested pins).
DISTRIBUTION = "trellis-align"

#: Import name -> distribution name of the dependencies with native code.
NATIVE = {
    "torch": "torch",
    "torchaudio": "torchaudio",
    "numpy": "numpy",
    "numba": "numba",
    "llvmlite": "llvmlite",
    "soundfile": "soundfile",
    "_soundfile": "soundfile",
    "soxr": "soxr",
    "scipy": "scipy",
    "sklearn": "scikit-learn",
    "librosa": "librosa",
    "matplotlib": "matplotlib",
    "safetensors": "safetensors",
    "espeakng_loader": "espeakng-loader",
    "onnxruntime": "onnxruntime",
    "PIL": "pillow",
}

#: Distributions whose builds must match each other: the versions named
#: together when one of them fails.
_GROUPS = (("torch", "torchaudio"), ("numba", "llvmlite", "numpy"))

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*?)\s*(?:;.*)?$")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_version(distribution: str) -> str | None:
    """The installed version of ``distribution`` (metadata only, nothing
    imported), or None when it is not installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def requirements() -> dict[str, str]:
    """This package's unconditional requirements: canonical distribution
    name -> version specifier (``{"torchaudio": "==2.11.0", ...}``); empty
    when the package metadata cannot be read (running from a bare checkout)."""
    try:
        lines = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return {}
    found: dict[str, str] = {}
    for line in lines:
        if ";" in line:  # an extra or a platform marker: not a requirement of every install
            continue
        match = _REQUIREMENT.match(line)
        if match:
            found[_canonical(match[1])] = match[2].replace(" ", "")
    return found


def pinned_version(distribution: str) -> str | None:
    """The exact version this package pins ``distribution`` to (``==X``,
    no wildcard), or None."""
    spec = requirements().get(_canonical(distribution), "")
    match = re.fullmatch(r"==([^,*]+)", spec)
    return match[1] if match else None


def _group(distribution: str) -> tuple[str, ...]:
    for group in _GROUPS:
        if distribution in group:
            return group
    return (distribution,)


def broken(module: str, error: BaseException) -> EnvironmentBrokenError:
    """The error for ``module`` (an import name) failing to import with
    ``error``: installed versions, likely cause, fix, on one line."""
    distribution = NATIVE.get(module.split(".")[0], module.split(".")[0])
    group = _group(distribution)
    installed = {name: installed_version(name) for name in group}
    shown = ", ".join(f"{name} {version or '(not installed)'}" for name, version in installed.items())
    specs = requirements()
    pins = {name: pinned_version(name) for name in group}

    def wanted(name: str) -> str:
        spec = f"=={pins[name]}" if pins[name] else specs.get(_canonical(name), "")
        return f"'{name}{spec}'" if any(c in spec for c in "<>*,!~") else f"{name}{spec}"

    mismatched = [name for name in group if pins[name] is not None and installed[name] != pins[name]]
    if installed[distribution] is None:
        cause = f"{distribution} is not installed"
        fix = "pip install " + " ".join(wanted(name) for name in (mismatched or [distribution]))
    elif mismatched:
        tested = " and ".join(f"{name} {pins[name]}" for name in group if pins[name])
        cause = f"this package is tested with {tested}"
        if "torchaudio" in group:
            cause += " (a torchaudio built for another torch release does not load)"
        fix = "pip install " + " ".join(wanted(name) for name in mismatched)
    else:
        cause = "its compiled library does not load (files broken, or built for other versions of its dependencies)"
        fix = "pip install --force-reinstall " + " ".join(wanted(name) for name in group)
    detail = " ".join(str(error).split()) or type(error).__name__
    if len(detail) > 200:
        detail = detail[:197] + "..."
    return EnvironmentBrokenError(
        f"{module} cannot be loaded ({type(error).__name__}: {detail}); installed: {shown}; {cause}; fix: {fix}"
    )


def require(*modules: str) -> None:
    """Import ``modules`` (``"torch"``, ``"torchaudio"``, ...); the first one
    that fails raises :class:`EnvironmentBrokenError` (importing torchaudio
    loads its native library, so a torch/torchaudio mismatch fails here).

    Raises:
        EnvironmentBrokenError: a module is missing or cannot be loaded.
    """
    for module in modules:
        if module in sys.modules and sys.modules[module] is not None:
            continue
        try:
            importlib.import_module(module)
        except (ImportError, OSError) as error:
            raise broken(explained_module(error) or module, error) from error


def _frames(traceback: TracebackType | None) -> Iterator[str]:
    """Module names of the ``<module>`` frames (a module's body being
    executed by an import) of ``traceback``, outermost first."""
    while traceback is not None:
        frame = traceback.tb_frame
        if frame.f_code.co_name == "<module>":
            yield str(frame.f_globals.get("__name__", ""))
        traceback = traceback.tb_next


def explained_module(error: BaseException) -> str | None:
    """The native dependency whose import raised ``error``, or None: a
    missing module (``ModuleNotFoundError`` naming it), or an
    ``ImportError`` / ``OSError`` raised while one of its modules was being
    imported (the innermost such module)."""
    if isinstance(error, ModuleNotFoundError) and error.name and error.name.split(".")[0] in NATIVE:
        return error.name.split(".")[0]
    if not isinstance(error, (ImportError, OSError)):
        return None
    names = [name.split(".")[0] for name in _frames(error.__traceback__)]
    native = [name for name in names if name in NATIVE]
    return native[-1] if native else None


def explain(error: BaseException) -> EnvironmentBrokenError | None:
    """``error`` as an :class:`EnvironmentBrokenError` when it is a native
    dependency failing to import (see :func:`explained_module`), else None."""
    module = explained_module(error)
    return None if module is None else broken(module, error)
