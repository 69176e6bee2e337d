"""Atomic file output: a file is either written completely or not touched.

Every writer of the package goes through :func:`atomic_path`: the content is
written to a hidden temporary file in the target's folder (``.NAME.XXXX.tmp``)
which is renamed onto the target with :func:`os.replace` only once it is
complete. Any exception removes the temporary file, so a failure (a bug, a
full disk, Ctrl-C) never leaves a partial file, a corrupt old file or a stray
temporary file behind.

Symbolic links are followed: a link to a regular file has its *target*
rewritten atomically (the link stays a link). An existing target that is not a
regular file or folder (``/dev/null``, a terminal, a FIFO) cannot be replaced
by a rename: the content is then built in a temporary file elsewhere and
written through to it (opened for writing, no rename), and a write error
(``/dev/full``: no space left) is an :class:`OutputError`.

:func:`same_file` tells whether an output path would land on an input file
(hard links, symbolic links, ``..`` and symlinked folders included).
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import OutputError

__all__ = ["atomic_path", "atomic_write_text", "check_not_input", "same_file"]


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether the paths ``a`` and ``b`` name the same file: the same device
    and inode when both exist, else the same resolved real path."""
    try:
        first, second = os.stat(a), os.stat(b)
    except OSError:
        pass
    else:
        return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)
    return os.path.realpath(a) == os.path.realpath(b)


def check_not_input(output: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str] | None]) -> None:
    """Raise :class:`OutputError` when ``output`` is one of the ``inputs``
    (None entries are ignored): an output never overwrites an input."""
    for source in inputs:
        if source is not None and same_file(output, source):
            raise OutputError(
                f"{output}: output file is the input file {source}; "
                "refusing to overwrite an input, choose another output path"
            )


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def _create_temporary(target: Path) -> Path:
    """Create an empty, exclusive temporary file next to ``target``.

    ``os.open`` with mode ``0o666`` lets the process umask decide the final
    permissions, as for a file opened normally (``mkstemp`` would give 0600).
    """
    for _ in range(100):
        candidate = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate
    raise FileExistsError(f"no free temporary name next to {target}")


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path that replaces ``path`` when the block succeeds.

    The parent folders of ``path`` are created if needed. The temporary file
    already exists (empty) when the block starts; the block may overwrite it
    by name. On success it is flushed to disk (``durable``) and renamed onto
    ``path`` atomically; if ``path`` already existed its permission bits are
    kept. On any exception the temporary file is deleted and ``path`` is left
    as it was. A symbolic link has its target rewritten (the link stays);
    an existing non-regular file (a device, a FIFO) is written through
    instead of being replaced (see the module documentation).

    Args:
        path: the file to (re)write.
        durable: ``fsync`` the content before the rename, so that a crash of
            the machine cannot leave an empty file either.

    Raises:
        OutputError: the folder cannot be created, ``path`` is a folder, or
            the file cannot be written (also for an ``OSError`` raised inside
            the block, such as a full disk).
    """
    target = Path(path)
    if target.name in ("", ".", ".."):
        raise OutputError(f"output path {str(path)!r} does not name a file")
    try:
        existing = os.stat(target)  # follows symbolic links
    except OSError:
        existing = None
    if existing is not None and not stat.S_ISREG(existing.st_mode) and not stat.S_ISDIR(existing.st_mode):
        with _write_through(target) as temporary:
            yield temporary
        return
    try:
        is_link = stat.S_ISLNK(os.lstat(target).st_mode)
    except OSError:  # missing, or a name the system cannot hold (reported when writing)
        is_link = False
    if is_link:  # rewrite the file the link points to, keep the link
        target = Path(os.path.realpath(target))
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create the folder {folder} for output file {target}: {_reason(error)}") from error
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise OutputError(f"output path {target} is a folder, not a file")
    try:
        temporary = _create_temporary(target)
    except OSError as error:
        raise OutputError(f"cannot write output file {target} (folder {folder}): {_reason(error)}") from error

    try:
        yield temporary
        if durable:
            _sync(temporary)
        if target.exists():
            os.chmod(temporary, stat.S_IMODE(target.stat().st_mode))
        os.replace(temporary, target)
    except OSError as error:
        _remove_quietly(temporary)
        raise OutputError(f"cannot write output file {target}: {_reason(error)}") from error
    except BaseException:
        _remove_quietly(temporary)
        raise


@contextmanager
def _write_through(target: Path) -> Iterator[Path]:
    """Build the content in a temporary file of the system's temporary folder,
    then copy it into the existing non-regular file ``target`` (a device, a
    FIFO) opened for writing: such a file cannot be replaced by a rename."""
    import tempfile

    try:
        fd, name = tempfile.mkstemp(suffix=".tmp", prefix=".aligner-")
    except OSError as error:
        raise OutputError(f"cannot write output file {target}: no temporary file: {_reason(error)}") from error
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        data = temporary.read_bytes()
        out = os.open(target, os.O_WRONLY)
        try:
            view = memoryview(data)
            while view:
                written = os.write(out, view)
                view = view[written:]
        finally:
            os.close(out)
    except OSError as error:
        raise OutputError(f"cannot write output file {target}: {_reason(error)}") from error
    finally:
        _remove_quietly(temporary)


def atomic_write_text(
    path: str | os.PathLike[str], text: str, encoding: str = "utf-8", *, durable: bool = True
) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`).

    Line endings are written as given (``"\\n"`` stays ``"\\n"`` on every
    platform).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputError: the file cannot be written, or ``text`` cannot be encoded
            with ``encoding``.
    """
    target = Path(path)
    try:
        data = text.encode(encoding)
    except LookupError as error:
        raise OutputError(f"cannot write {target}: unknown encoding {encoding!r}") from error
    except UnicodeEncodeError as error:
        raise OutputError(
            f"cannot write {target}: character {error.object[error.start : error.end]!r} "
            f"cannot be encoded as {encoding}"
        ) from error
    with atomic_path(target, durable=durable) as temporary:
        temporary.write_bytes(data)
    return target
