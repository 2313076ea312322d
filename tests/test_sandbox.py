"""The grading sandbox's layers, each on a plain Python command: limits, file system, network, user.

``tests/test_grading_robustness.py`` checks the same through whole graded notebooks; here each
limit is pushed on its own, fast, with small limits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from course_lib.grading.sandbox import (
    SandboxedKernelManager,
    check_sandbox,
    chown_tree,
    is_root,
    readable_folders,
    reserve_uid,
    sandbox_command,
)

REPO = Path(__file__).resolve().parents[1]
MEBIBYTE = 1024 * 1024


def run_sandboxed(code: str, tmp_path: Path, **limits: int) -> subprocess.CompletedProcess:
    """``python -c code`` in the sandbox, with ``tmp_path/work`` as its writable folder."""
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    uid, lock = reserve_uid(SandboxedKernelManager.uid_base.default_value)
    try:
        if is_root():
            chown_tree(workdir, uid)
        command = sandbox_command(
            [sys.executable, "-c", code],
            workdir=workdir,
            private=None,
            uid=uid,
            limits=limits,
            tmp_size=MEBIBYTE,
        )
        return subprocess.run(command, capture_output=True, text=True, timeout=120)
    finally:
        os.close(lock)


def test_the_sandbox_works_on_this_machine():
    check_sandbox()


def test_the_cpu_time_limit_kills_a_busy_loop(tmp_path):
    started = time.perf_counter()
    result = run_sandboxed("while True:\n    pass", tmp_path, cpu=2)
    assert result.returncode != 0
    assert time.perf_counter() - started < 60


def test_the_memory_limit_makes_allocation_fail(tmp_path):
    result = run_sandboxed("bytearray(2 * 1024**3)", tmp_path, **{"as": 1024 * MEBIBYTE})
    assert result.returncode == 1 and "MemoryError" in result.stderr


def test_the_process_limit_stops_a_fork_loop(tmp_path):
    code = (
        "import os, time\nchildren = 0\ntry:\n    while children < 500:\n        if os.fork() == 0:\n"
        "            time.sleep(3)\n            os._exit(0)\n        children += 1\n"
        "except OSError as error:\n    print(children, error)"
    )
    result = run_sandboxed(code, tmp_path, nproc=20)
    children, message = result.stdout.split(" ", 1)
    assert int(children) < 20 and "Resource temporarily unavailable" in message


def test_the_file_size_limit_stops_a_big_file_and_tmp_is_small(tmp_path):
    code = (
        "for path in ('big.bin', '/tmp/big.bin'):\n    try:\n"
        "        open(path, 'wb').write(b'x' * 4 * 1024**2)\n"
        "    except OSError as error:\n        print(path, error.strerror)"
    )
    result = run_sandboxed(code, tmp_path, fsize=2 * MEBIBYTE)
    assert "big.bin File too large" in result.stdout
    assert "/tmp/big.bin File too large" in result.stdout or "/tmp/big.bin No space left" in result.stdout


def test_the_file_system_holds_python_and_course_lib_only(tmp_path):
    beside = tmp_path / "beside-the-work-folder.txt"
    beside.write_text("not for the kernel")
    code = (
        f"import os, course_lib\nprint(sorted(os.listdir({str(REPO)!r})))\n"
        f"print(os.path.exists({str(REPO / 'solutions')!r}), os.path.exists({str(beside)!r}))\n"
        "open('mine.txt', 'w').write('x')\n"
        "try:\n    open(course_lib.__file__, 'a')\nexcept OSError as error:\n    print(error.strerror)"
    )
    result = run_sandboxed(code, tmp_path)
    assert result.returncode == 0, result.stderr
    listing, exists, refused = result.stdout.splitlines()
    visible = {folder.name for folder in readable_folders() if folder.parent == REPO}
    assert set(eval(listing)) == visible and "solutions" not in visible
    assert exists == "False False"
    assert refused in ("Read-only file system", "Permission denied")
    assert (tmp_path / "work" / "mine.txt").exists()


def test_there_is_no_network(tmp_path):
    code = (
        "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=3)\n"
        "except OSError as error:\n    print(error.strerror)\nprint(socket.if_nameindex())"
    )
    result = run_sandboxed(code, tmp_path)
    assert "Network is unreachable" in result.stdout
    assert [name for _, name in eval(result.stdout.splitlines()[1])] == ["lo"]


@pytest.mark.skipif(
    not is_root(), reason="a kernel has a user id of its own only when the grader runs as root"
)
def test_kernels_side_by_side_get_different_unprivileged_users(tmp_path):
    first, first_lock = reserve_uid(SandboxedKernelManager.uid_base.default_value)
    second, second_lock = reserve_uid(SandboxedKernelManager.uid_base.default_value)
    os.close(first_lock)
    os.close(second_lock)
    assert first != second and min(first, second) >= SandboxedKernelManager.uid_base.default_value
    result = run_sandboxed(
        "import os\nprint(os.getuid(), os.getgid(), os.getgroups())\nos.setuid(0)", tmp_path
    )
    uid, gid, groups = result.stdout.split(" ", 2)
    assert int(uid) >= SandboxedKernelManager.uid_base.default_value and gid == uid and groups.strip() == "[]"
    assert "PermissionError" in result.stderr
