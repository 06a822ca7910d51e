"""Safe output files: the one writer behind every command's ``--out``/``--json`` and every library save.

* :func:`check_output` runs *before* the work starts: it refuses an output that is the same file as one of the
  inputs (also through another spelling of the path: symlinks, ``..``, hard links), names a directory or a
  non-directory parent as such, creates missing parent folders and proves the folder is writable by creating and
  removing a probe file there. Problems are :class:`~molesyn_lib.errors.InputError` lines naming the file.
* :func:`atomic_open` / :func:`write_text` / :func:`write_bytes` / :func:`write_json` write to a temporary file beside
  the target, flush and ``fsync`` it, and ``os.replace`` it into place: a run stopped by Ctrl-C or SIGKILL leaves
  either the old file or the complete new one, never a half-written file that looks complete.
* :func:`dumps_strict` is strict JSON: NaN and infinities become ``null`` (there is no NaN in JSON) and
  ``allow_nan=False`` guarantees no ``NaN``/``Infinity`` token is ever printed or written.
* The reading side's file-level checks: :func:`input_problem` says why a path cannot be read as a file (missing,
  a directory, under a regular file), :func:`json_reason` words a JSON error once, and :func:`read_json_file`
  reads one whole JSON document (``.gz`` allowed, a UTF-8 byte-order mark skipped) with one-line errors naming the
  file and line for bad gzip data, non-UTF-8 bytes, invalid JSON and nesting too deep to parse.
"""
from __future__ import annotations

import gzip
import json
import math
import os
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from .errors import InputError

PathLike = str | os.PathLike[str]


def same_file(a: PathLike, b: PathLike) -> bool:
    """True when ``a`` and ``b`` name the same file: :func:`os.path.samefile` when both exist (symlinks and hard
    links included), else equal resolved paths."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def _existing_non_directory_parent(path: Path) -> Path | None:
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def check_output(path: PathLike, inputs: Iterable[PathLike | None] = (), what: str = "output") -> Path:
    """Check that ``path`` can be written as an output of a run reading ``inputs``, before any work starts.

    Raises :class:`InputError` naming ``path`` when it is one of the inputs, a directory, under a regular file, or
    in a folder that cannot be written. Creates the missing parent folders. Returns ``path`` as a :class:`Path`.
    """
    out = Path(path).expanduser()
    for source in inputs:
        if source is not None and same_file(out, source):
            raise InputError(f"the {what} is the same file as the input {source}; refusing to overwrite it "
                             "(choose another output path)", out)
    if out.is_dir():
        raise InputError(f"the {what} is a directory, not a file", out)
    blocker = _existing_non_directory_parent(out)
    if blocker is not None:
        raise InputError(f"cannot write the {what}: {blocker} is a file, not a directory", out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder of the {what} ({exc.strerror or exc})", out) from None
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=out.parent)
    except OSError as exc:
        raise InputError(f"cannot write the {what} in {out.parent} ({exc.strerror or exc})", out) from None
    os.close(fd)
    os.unlink(probe)
    return out


def current_umask() -> int:
    """The process's file-creation mask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_open(path: PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on a clean exit it is flushed, synced and renamed over
    ``path``; on any exception (Ctrl-C included) it is removed and ``path`` is left as it was."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode must be 'w' or 'wb', got {mode!r}")
    target = Path(path).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, mode, encoding=encoding if mode == "w" else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(text)
    return Path(path)


def write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def finite_or_none(value: Any) -> Any:
    """``value`` with every NaN/infinite float (numpy scalars and arrays included) replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(item) for item in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy arrays and scalars
        return finite_or_none(value.tolist())
    return value


def dumps_strict(value: Any, **options: Any) -> str:
    """``json.dumps`` that never emits ``NaN``/``Infinity``: non-finite numbers become ``null`` first."""
    return json.dumps(finite_or_none(value), allow_nan=False, **options)


def write_json(path: PathLike, value: Any, indent: int | None = 2, **options: Any) -> Path:
    """Write ``value`` as strict JSON (:func:`dumps_strict`) plus a newline to ``path`` atomically."""
    return write_text(path, dumps_strict(value, indent=indent, **options) + "\n")


# ------------------------------------------------------------------------------------------------------ reading
#: The first two bytes of gzip data (how gzip is recognised, whatever the file is called).
GZIP_MAGIC = b"\x1f\x8b"
#: Exceptions a corrupt ``.gz`` stream raises while it is read (bad header, cut-off stream, bad deflate data).
GZIP_ERRORS: tuple[type[BaseException], ...] = (gzip.BadGzipFile, EOFError, zlib.error)


def open_binary(path: PathLike) -> IO[bytes]:
    """Open ``path`` for reading bytes, through gzip when it holds gzip data (by its magic bytes, whatever the
    suffix)."""
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == GZIP_MAGIC
    return gzip.open(path, "rb") if gzipped else open(path, "rb")  # type: ignore[return-value]


def input_problem(path: PathLike) -> str | None:
    """Why ``path`` cannot be read as an input file (``None`` when it is a readable regular file)."""
    target = Path(path)
    if target.is_file():
        return None if os.access(target, os.R_OK) else "permission denied"
    if target.is_dir():
        return "is a directory, not a file"
    blocker = _existing_non_directory_parent(target)
    if blocker is not None:
        return f"cannot be read: {blocker} is a file, not a directory"
    if target.exists():
        return "not a regular file"
    return "no such file"


def require_input(path: PathLike) -> Path:
    """``path`` as a :class:`Path`; :class:`InputError` saying why when it is not a readable file."""
    problem = input_problem(path)
    if problem is not None:
        raise InputError(problem, path)
    return Path(path)


def json_reason(exc: json.JSONDecodeError) -> str:
    """``exc`` in words, once: "Invalid control character at" loses its dangling "at" before " at column N"."""
    message = exc.msg.removesuffix(" at")
    return f"{message} at column {exc.colno}"


def gzip_reason(exc: BaseException) -> str:
    """A corrupt gzip stream's error in words."""
    if isinstance(exc, EOFError):
        return "not a complete gzip file (the compressed stream ends early)"
    return f"not a valid gzip file ({exc})"


def read_json_file(path: PathLike) -> Any:
    """Read one whole JSON document; :class:`InputError` naming the file (and line) for anything unreadable."""
    target = require_input(path)
    try:
        data = target.read_bytes()
        if target.suffix == ".gz":
            data = gzip.decompress(data)
    except GZIP_ERRORS as exc:
        raise InputError(gzip_reason(exc), target) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", target, line) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({json_reason(exc)})", target, exc.lineno) from None
    except RecursionError:
        raise InputError("JSON nested too deeply to read", target) from None


__all__ = ["GZIP_ERRORS", "atomic_open", "check_output", "current_umask", "dumps_strict", "finite_or_none", "gzip_reason",
           "input_problem", "json_reason", "read_json_file", "require_input", "same_file", "write_bytes",
           "write_json", "write_text"]
