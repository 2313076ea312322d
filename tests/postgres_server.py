"""A throwaway PostgreSQL server for tests: Debian's server binaries, reachable on a Unix socket only.

    with postgres_server(server_binaries_or_skip()) as server:
        url = server.create_database("gradebook")  # a SQLAlchemy URL

The server's data and its socket live in a temporary folder of their own, which is removed
when the block ends; the server listens on no TCP address. PostgreSQL refuses to run as
root, so a root process runs the server as the ``postgres`` account that Debian's package
creates.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

DEBIAN_SERVERS = Path("/usr/lib/postgresql")  # Debian's postgresql package: <version>/bin/initdb, pg_ctl
SERVER_ACCOUNT = "postgres"  # the account Debian's package creates, which runs the server for root
SUPERUSER = "postgres"  # the database superuser that initdb creates (trust authentication: no password)
SOCKET_PATH_LIMIT = 107  # bytes in a Unix socket's path (sun_path less its final zero byte)
COMMAND_TIMEOUT = 120  # seconds for initdb, and for pg_ctl to start or stop the server


@dataclass(frozen=True)
class PostgresServer:
    """A running server: its folder (data in ``data/``, the socket in the folder itself) and port."""

    folder: Path
    port: int  # only part of the socket's name: the server listens on no TCP port

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` on this server, through its Unix socket."""
        return f"postgresql+psycopg2://{SUPERUSER}@/{database}?host={self.folder}&port={self.port}"

    def create_database(self, name: str) -> str:
        """Create the empty database ``name`` and return its SQLAlchemy URL."""
        import psycopg2
        from psycopg2 import sql

        connection = psycopg2.connect(host=str(self.folder), port=self.port, user=SUPERUSER,
                                      dbname="postgres")
        try:
            connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with connection.cursor() as cursor:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            connection.close()
        return self.url(name)


def _version(folder: Path) -> tuple[int, ...]:
    """The version of a ``/usr/lib/postgresql/<version>`` folder as numbers (``9.6`` → (9, 6))."""
    return tuple(int(number) for number in re.findall(r"\d+", folder.name))


def server_binaries() -> Path | None:
    """The ``bin`` folder of the newest server that Debian's packages installed, or None if there is none."""
    folders = [path.parent for path in DEBIAN_SERVERS.glob("*/bin") if (path / "pg_ctl").is_file()]
    folders = [folder for folder in folders if (folder / "bin" / "initdb").is_file()]
    return max(folders, key=_version) / "bin" if folders else None


def server_binaries_or_skip() -> Path:
    """The newest server's ``bin`` folder; skips the test when there is no server or no ``psycopg2``."""
    pytest.importorskip(
        "psycopg2", reason="psycopg2 is not installed: run `.venv/bin/pip install -r requirements.txt`"
    )
    binaries = server_binaries()
    if binaries is None:
        pytest.skip(f"no PostgreSQL server in {DEBIAN_SERVERS}/<version>/bin: run "
                    "`sudo apt-get install postgresql` (or `make test`, which installs it)")
    return binaries


def _server_account() -> str | None:
    """The account the server runs as: ``postgres`` for root, else None (this process's own)."""
    return SERVER_ACCOUNT if os.geteuid() == 0 else None


def _as_account(command: list[str], account: str | None) -> list[str]:
    return ["runuser", "-u", account, "--", *command] if account else command


def _run(command: list[str], account: str | None, folder: Path) -> None:
    """Run a server command in ``folder``; on failure, raise an error with its output and the server's log."""
    result = subprocess.run(_as_account(command, account), cwd=folder, capture_output=True, text=True,
                            timeout=COMMAND_TIMEOUT)
    if result.returncode != 0:
        log = folder / "server.log"
        server_log = log.read_text(errors="replace")[-4000:] if log.is_file() else "(no server log)"
        raise RuntimeError(
            f"`{shlex.join(command)}` failed ({result.returncode}) as "
            f"{account or 'this process user'}:\n{result.stdout}{result.stderr}\nserver log:\n{server_log}"
        )


def _private_folder(account: str | None) -> Path:
    """A new temporary folder owned by ``account`` (this process's user when None), checked to be usable.

    The server runs in it and puts its socket in it, so its path must be short and
    ``account`` must be able to reach it through the folders above it.
    """
    folder = Path(tempfile.mkdtemp(prefix="pg-"))
    try:
        if account:
            shutil.chown(folder, account, account)
            reachable = subprocess.run(["runuser", "-u", account, "--", "test", "-w", str(folder), "-a", "-x",
                                        str(folder)], capture_output=True).returncode == 0
            if not reachable:
                raise RuntimeError(
                    f"the {account} account, which runs the PostgreSQL server for root, cannot reach "
                    f"{folder}: set TMPDIR to a folder that every account can reach (TMPDIR=/tmp, say)"
                )
        if len(str(folder / ".s.PGSQL.65535").encode()) > SOCKET_PATH_LIMIT:
            raise RuntimeError(
                f"the temporary folder {folder} is too long a path for the server's socket "
                f"(at most {SOCKET_PATH_LIMIT - 14} bytes): set TMPDIR to a shorter one (/tmp, say)"
            )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


def _free_port() -> int:
    """A port number no local TCP server uses (the server takes it for its socket's name only)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_options(folder: Path, port: int) -> str:
    """``postgres``'s options (which pg_ctl passes through the shell): a Unix socket only, no fsync."""
    return shlex.join(["-c", "listen_addresses=", "-k", str(folder), "-p", str(port), "-c", "fsync=off"])


@contextmanager
def postgres_server(binaries: Path) -> Iterator[PostgresServer]:
    """A new server run by the ``initdb`` and ``pg_ctl`` of ``binaries``, stopped and removed at the end.

    The block starts once the server accepts connections; the server is stopped and its
    folder removed however the block ends.
    """
    account = _server_account()
    folder = _private_folder(account)
    data = folder / "data"
    server = PostgresServer(folder, _free_port())
    try:
        _run([str(binaries / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
              "--locale=C", "--no-sync"], account, folder)
        _run([str(binaries / "pg_ctl"), "start", "-D", str(data), "-l", str(folder / "server.log"), "-w",
              "-t", str(COMMAND_TIMEOUT), "-o", _server_options(folder, server.port)], account, folder)
        yield server
    finally:
        try:
            if (data / "postmaster.pid").is_file():
                _run([str(binaries / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w"], account, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
