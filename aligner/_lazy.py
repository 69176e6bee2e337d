"""Lazy package attributes (PEP 562): a public name is imported from its
module on first use, so importing a package stays fast and a module that
needs only part of it does not pull in the rest. A compiled dependency
that fails to load on first use is an :class:`~aligner.errors.EnvironmentBrokenError`
saying how to fix the install."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose public names
    live in the submodules ``exports`` names (``{"Aligner": "pipeline"}``).
    A name is cached in ``namespace`` (the package's globals) once loaded."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        try:
            loaded = importlib.import_module(f".{module}", package)
        except (ImportError, OSError) as error:  # torch, torchaudio... that do not load: say how to fix it
            from .environment import explain

            environment = explain(error)
            if environment is None:
                raise
            raise environment from error
        value = getattr(loaded, name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
