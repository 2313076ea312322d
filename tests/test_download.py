"""Tests of course_lib.data.download.

Downloads are served by a stdlib HTTP server on 127.0.0.1; every test uses a
temporary cache directory, and any attempt to reach another host fails the test.
"""

from __future__ import annotations

import functools
import hashlib
import socket
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from course_lib.data import download
from course_lib.data.download import (
    CACHE_ENV_VAR,
    MIRROR_ENV_VAR,
    ChecksumMismatchError,
    CorpusEntry,
    CorpusError,
    CorpusUnavailableError,
    cache_path,
    fetch,
    load_tinyshakespeare,
    resolve_cache_dir,
)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PAYLOAD = bytes(range(256)) * 800  # 204,800 bytes: several read chunks
RELATIVE_PATH = "test/corpus.bin"
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


class _Handler(SimpleHTTPRequestHandler):
    """Serves files from a directory, records each request, and can cut a response short."""

    server: _LocalServer

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        cut = self.server.truncate_at.get(self.path)
        if cut is None:
            super().do_GET()
            return
        body = (self.server.root / self.path.lstrip("/")).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:cut])
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        """Keep the test output quiet."""


class _LocalServer(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 (ephemeral port) serving ``root``."""

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
        self.root = root
        self.requests: list[str] = []
        self.truncate_at: dict[str, int] = {}  # URL path -> bytes sent before closing

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_port}/{path}"

    def publish(self, path: str, data: bytes) -> str:
        """Serve ``data`` at ``path`` and return its URL."""
        file = self.root / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(data)
        return self.url(path)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Hide the user's settings and cache, and refuse any host but 127.0.0.1."""
    monkeypatch.delenv(MIRROR_ENV_VAR, raising=False)
    monkeypatch.delenv(CACHE_ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    real_urlopen = urllib.request.urlopen

    def local_only_urlopen(url, *args, **kwargs):
        parts = urllib.parse.urlsplit(url if isinstance(url, str) else url.full_url)
        if parts.scheme != "file" and parts.hostname != "127.0.0.1":
            raise AssertionError(f"a test tried to reach {url}")
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", local_only_urlopen)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[_LocalServer]:
    root = tmp_path / "www"
    root.mkdir()
    httpd = _LocalServer(root)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def _entry(url: str, data: bytes = PAYLOAD) -> CorpusEntry:
    """A registry entry for ``data`` served at ``url``."""
    return CorpusEntry(
        name="test-corpus",
        url=url,
        path=RELATIVE_PATH,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: the stand-in for 'no network'."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/{RELATIVE_PATH}"


def _files(root: Path) -> list[Path]:
    """Every file under ``root``, hidden temporary files included."""
    return sorted(path for path in root.rglob("*") if path.is_file())


def _write_mirror(root: Path, data: bytes = PAYLOAD) -> Path:
    (root / RELATIVE_PATH).parent.mkdir(parents=True)
    (root / RELATIVE_PATH).write_bytes(data)
    return root


def test_fetch_downloads_a_verified_copy(server: _LocalServer, cache: Path) -> None:
    entry = _entry(server.publish(RELATIVE_PATH, PAYLOAD))
    path = fetch(entry, cache_dir=cache)
    assert path == cache / RELATIVE_PATH
    assert path.read_bytes() == PAYLOAD
    assert _files(cache) == [path]
    assert server.requests == [f"/{RELATIVE_PATH}"]


def test_second_fetch_uses_the_cache(server: _LocalServer, cache: Path) -> None:
    entry = _entry(server.publish(RELATIVE_PATH, PAYLOAD))
    first = fetch(entry, cache_dir=cache)
    second = fetch(entry, cache_dir=cache)
    assert first == second
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "served",
    [PAYLOAD[:-1] + b"!", PAYLOAD + b"extra"],
    ids=["one-byte-changed", "too-long"],
)
def test_corrupted_download_is_rejected_and_removed(server: _LocalServer, cache: Path, served: bytes) -> None:
    entry = _entry(server.publish(RELATIVE_PATH, served), data=PAYLOAD)
    with pytest.raises(ChecksumMismatchError) as error:
        fetch(entry, cache_dir=cache)
    message = str(error.value)
    assert RELATIVE_PATH in message
    assert entry.url in message
    assert entry.sha256 in message
    if len(served) == len(PAYLOAD):
        assert hashlib.sha256(served).hexdigest() in message
    assert _files(cache) == []


def test_truncated_download_leaves_nothing_behind(server: _LocalServer, cache: Path) -> None:
    entry = _entry(server.publish(RELATIVE_PATH, PAYLOAD))
    server.truncate_at[f"/{RELATIVE_PATH}"] = len(PAYLOAD) // 2
    with pytest.raises(CorpusError) as error:
        fetch(entry, cache_dir=cache)
    assert entry.url in str(error.value)
    assert _files(cache) == []


def test_http_error_leaves_nothing_behind(server: _LocalServer, cache: Path) -> None:
    entry = _entry(server.url("missing/corpus.bin"))
    with pytest.raises(CorpusUnavailableError, match="404"):
        fetch(entry, cache_dir=cache)
    assert _files(cache) == []


@pytest.mark.parametrize("bad_copy", [b"garbage", PAYLOAD[:-1] + b"!"], ids=["wrong-size", "wrong-bytes"])
def test_corrupted_cached_copy_is_fetched_again(server: _LocalServer, cache: Path, bad_copy: bytes) -> None:
    entry = _entry(server.publish(RELATIVE_PATH, PAYLOAD))
    target = cache_path(entry, cache)
    target.parent.mkdir(parents=True)
    target.write_bytes(bad_copy)
    assert fetch(entry, cache_dir=cache).read_bytes() == PAYLOAD
    assert len(server.requests) == 1


def test_no_network_and_no_mirror_explains_both_ways_out(cache: Path) -> None:
    entry = _entry(_closed_port_url())
    with pytest.raises(CorpusUnavailableError) as error:
        fetch(entry, cache_dir=cache)
    message = str(error.value)
    assert MIRROR_ENV_VAR in message
    assert entry.url in message
    assert str(cache / RELATIVE_PATH) in message
    assert _files(cache) == []


def test_mirror_without_the_file_is_reported(tmp_path: Path, cache: Path) -> None:
    mirror = tmp_path / "empty-mirror"
    mirror.mkdir()
    with pytest.raises(CorpusUnavailableError) as error:
        fetch(_entry(_closed_port_url()), cache_dir=cache, mirror=mirror)
    assert f"mirror directory {mirror} does not contain {RELATIVE_PATH}" in str(error.value)


def test_missing_mirror_directory_is_reported(tmp_path: Path, cache: Path) -> None:
    mirror = tmp_path / "no-such-dir"
    with pytest.raises(CorpusUnavailableError, match="does not exist"):
        fetch(_entry(_closed_port_url()), cache_dir=cache, mirror=mirror)


def test_mirror_url_prefix(server: _LocalServer, cache: Path) -> None:
    server.publish(f"mirror/{RELATIVE_PATH}", PAYLOAD)
    path = fetch(_entry(_closed_port_url()), cache_dir=cache, mirror=server.url("mirror/"))
    assert path.read_bytes() == PAYLOAD
    assert server.requests == [f"/mirror/{RELATIVE_PATH}"]


@pytest.mark.parametrize("form", [Path, str, Path.as_uri], ids=["path", "str", "file-url"])
def test_mirror_directory(tmp_path: Path, cache: Path, form) -> None:
    mirror = _write_mirror(tmp_path / "mirror")
    path = fetch(_entry(_closed_port_url()), cache_dir=cache, mirror=form(mirror))
    assert path.read_bytes() == PAYLOAD


def test_mirror_without_the_file_falls_back_to_the_url(
    server: _LocalServer, tmp_path: Path, cache: Path
) -> None:
    mirror = tmp_path / "empty-mirror"
    mirror.mkdir()
    entry = _entry(server.publish(RELATIVE_PATH, PAYLOAD))
    assert fetch(entry, cache_dir=cache, mirror=mirror).read_bytes() == PAYLOAD


def test_environment_variables_choose_mirror_and_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cache: Path
) -> None:
    mirror = _write_mirror(tmp_path / "mirror")
    monkeypatch.setenv(MIRROR_ENV_VAR, str(mirror))
    monkeypatch.setenv(CACHE_ENV_VAR, str(cache))
    assert fetch(_entry(_closed_port_url())) == cache / RELATIVE_PATH


def test_cache_dir_resolution_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert resolve_cache_dir() == tmp_path / "xdg-cache" / "course_lib"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert resolve_cache_dir() == tmp_path / "home" / ".cache" / "course_lib"
    monkeypatch.setenv(CACHE_ENV_VAR, str(tmp_path / "from-env"))
    assert resolve_cache_dir() == tmp_path / "from-env"
    assert resolve_cache_dir(tmp_path / "explicit") == tmp_path / "explicit"


def test_unknown_name_and_bad_entries_are_refused() -> None:
    with pytest.raises(KeyError, match="tinyshakespeare"):
        fetch("no-such-corpus")
    with pytest.raises(ValueError, match="relative"):
        CorpusEntry("bad", "http://127.0.0.1/x", "../x", 1, "0" * 64)
    with pytest.raises(ValueError, match="sha256"):
        CorpusEntry("bad", "http://127.0.0.1/x", "x", 1, "not-a-checksum")


@pytest.fixture
def shared_mirror() -> Path:
    if not (SHARED_DATA / download.TINY_SHAKESPEARE.path).is_file():
        pytest.skip(f"no local mirror with {download.TINY_SHAKESPEARE.path} at {SHARED_DATA}")
    return SHARED_DATA


def test_tinyshakespeare_from_the_shared_mirror(shared_mirror: Path, cache: Path) -> None:
    path = fetch("tinyshakespeare", cache_dir=cache, mirror=shared_mirror)
    data = path.read_bytes()
    assert path == cache / "tinyshakespeare" / "input.txt"
    assert len(data) == 1_115_394
    assert hashlib.sha256(data).hexdigest() == SHAKESPEARE_SHA256


def test_load_tinyshakespeare_through_environment_variables(
    monkeypatch: pytest.MonkeyPatch, shared_mirror: Path, cache: Path
) -> None:
    monkeypatch.setenv(MIRROR_ENV_VAR, str(shared_mirror))
    monkeypatch.setenv(CACHE_ENV_VAR, str(cache))
    text = load_tinyshakespeare()
    assert text.startswith("First Citizen:")
    assert (cache / "tinyshakespeare" / "input.txt").is_file()
