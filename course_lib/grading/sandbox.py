"""The sandbox a student's kernel runs in while its notebook is graded.

A hand-in is untrusted code running on the instructor's machine. :class:`SandboxedKernelManager`
starts the kernel through three layers, each from the operating system, none from Python:

1. **bubblewrap** (``bwrap``, Debian package ``bubblewrap``) gives the kernel its own mount,
   PID, network, IPC and UTS namespaces. Its file system holds only the system folders
   (``/usr``, ``/etc``, read-only), the Python installation and ``course_lib`` (read-only),
   an empty private ``/tmp``, and, writable, the hand-in's own scratch folder and the folder
   of its kernel's sockets. ``solutions/``, the gradebook and the other hand-ins are not in it.
   Its network namespace has no interface but its own loopback; it talks to the grader over
   Unix sockets (ZeroMQ's ``ipc`` transport) in its private folder.
2. **an unprivileged user**: when the grader runs as root, each kernel runs as a user id of
   its own that no account has (``uid_base`` + a free slot, held by a lock while the kernel
   runs), with every capability dropped (``setpriv``), so that kernels running side by side
   cannot signal each other or share a process limit; otherwise it keeps the grader's user
   inside a user namespace of its own.
3. **resource limits** (``prlimit``): CPU time, address space (memory), processes (for the
   user) and the size of any file it writes.

The kernel's environment is emptied but for a few variables (``pass_environment``), and it is
interrupted by a message, not a signal, since signals do not cross into its PID namespace.
"""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from traitlets import Integer, List, Unicode

import course_lib
from course_lib.grading import GradingError

SANDBOX_TOOLS = ("bwrap", "prlimit", "setpriv")  # bubblewrap, and util-linux's two
UID_SLOTS = 4096  # kernels that can run at once as root, each with its own user id
UID_LOCKS = Path(tempfile.gettempdir()) / "course-lib-grading-uids"  # a lock file per slot in use
INSTALL_HINT = "install Debian's bubblewrap (apt-get install bubblewrap; `make test` does it)"
SYSTEM_FOLDERS = ("/usr", "/etc")  # mounted read-only; /bin, /lib, /lib64, /sbin follow them
MERGED_USR_LINKS = ("/bin", "/lib", "/lib64", "/sbin")


def is_root() -> bool:
    return os.geteuid() == 0


def readable_folders() -> list[Path]:
    """The folders the kernel may read besides the system: Python, its packages and ``course_lib``.

    Nested folders are dropped (their parent is mounted), and so is any folder that would
    expose the course folder as a whole: only the ``course_lib`` package of it is mounted.
    """
    candidates = {
        Path(sys.base_prefix),
        Path(sys.prefix),
        Path(sys.exec_prefix),
        Path(course_lib.__file__).resolve().parent,
    }
    candidates.update(Path(folder) for folder in site.getsitepackages())
    user_site = site.getusersitepackages()
    if isinstance(user_site, str):
        candidates.add(Path(user_site))
    folders = sorted(folder.resolve() for folder in candidates if folder.is_dir())
    kept: list[Path] = []
    for folder in folders:
        if not any(folder.is_relative_to(parent) for parent in kept):
            kept.append(folder)
    return kept


def _parents(folder: Path) -> list[Path]:
    """``folder``'s ancestors below ``/``, outermost first."""
    return list(reversed(folder.parents))[1:]


def _mount_arguments(readable: list[Path], writable: list[Path], tmp_size: int | None) -> list[str]:
    """bwrap's arguments for the sandbox's file system (see the module's docstring).

    ``tmp_size`` caps the private ``/tmp`` (bytes; None: bwrap's default, half the memory).
    """
    arguments = []
    for folder in SYSTEM_FOLDERS:
        arguments += ["--ro-bind", folder, folder]
    for link in MERGED_USR_LINKS:
        path = Path(link)
        if path.is_symlink():
            arguments += ["--symlink", os.readlink(path), link]
        elif path.is_dir():
            arguments += ["--ro-bind", link, link]
    arguments += ["--proc", "/proc", "--dev", "/dev"]
    arguments += (["--size", str(tmp_size)] if tmp_size else []) + ["--perms", "1777", "--tmpfs", "/tmp"]
    created: set[Path] = set()
    for folder, mode in [
        *((folder, "--ro-bind") for folder in readable),
        *((folder, "--bind") for folder in writable),
    ]:
        for parent in _parents(folder):
            if parent not in created and str(parent) not in ("/tmp", *SYSTEM_FOLDERS):
                arguments += ["--perms", "0755", "--dir", str(parent)]  # traversable whatever the host's
                created.add(parent)
        arguments += [mode, str(folder), str(folder)]
    return arguments


@functools.lru_cache(maxsize=1)
def check_sandbox() -> None:
    """Fail with a clear message unless a kernel can be started in the sandbox on this machine."""
    missing = [tool for tool in SANDBOX_TOOLS if shutil.which(tool) is None]
    if missing:
        raise GradingError(
            f"the grading sandbox needs {', '.join(missing)}: {INSTALL_HINT}, "
            "or grade with --unsandboxed, only for notebooks you trust"
        )
    uid, lock = reserve_uid(SandboxedKernelManager.uid_base.default_value)
    try:
        with tempfile.TemporaryDirectory(prefix="sandbox-check-") as folder:
            if is_root():
                chown_tree(Path(folder), uid)
            command = sandbox_command(
                [sys.executable, "-c", "pass"], workdir=Path(folder), private=None, uid=uid, limits={}
            )
            result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    finally:
        os.close(lock)
    if result.returncode != 0:
        raise GradingError(
            f"bubblewrap cannot start a sandbox here ({result.stderr.strip() or result.returncode}): "
            "it needs user namespaces, or root; grade as root, enable unprivileged user "
            "namespaces, or grade with --unsandboxed, only for notebooks you trust"
        )


def sandbox_command(
    command: list[str],
    *,
    workdir: Path,
    private: Path | None,
    uid: int,
    limits: dict[str, int],
    environment: dict[str, str] | None = None,
    tmp_size: int | None = None,
) -> list[str]:
    """``command`` wrapped in bubblewrap, an unprivileged user and resource limits.

    ``workdir`` is the kernel's working folder (the hand-in's, writable), ``private`` the
    folder of its connection file and sockets (writable); ``uid`` is the user (and group) id
    the command runs as when called as root; ``limits`` maps ``prlimit``'s long
    options (``as``, ``cpu``, ``nproc``, ``fsize``) to values; ``environment`` is all the
    environment the command gets; ``tmp_size`` caps the private ``/tmp`` (bytes).
    """
    writable = [workdir] + ([private] if private else [])
    wrapper = [
        "bwrap",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
    ]
    if is_root():
        wrapper += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]  # for setpriv, which drops them all
    else:
        wrapper += ["--unshare-user"]
    for name, value in (environment or {"PATH": "/usr/bin:/bin"}).items():
        wrapper += ["--setenv", name, value]
    wrapper += _mount_arguments(readable_folders(), writable, tmp_size)
    wrapper += ["--chdir", str(workdir), "--"]
    wrapper += ["prlimit", *(f"--{name}={value}" for name, value in limits.items()), "--"]
    if is_root():
        wrapper += [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
        ]
    return wrapper + command


def chown_tree(folder: Path, uid: int) -> None:
    """Give ``folder`` and all in it to user and group ``uid``, so that the kernel may write there."""
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, uid, uid, follow_symlinks=False)


def reserve_uid(base: int) -> tuple[int, int]:
    """A user id ``base + slot`` that no other kernel of this machine holds, and the lock that holds it.

    The lock is an open file descriptor with an ``flock``: close it when the kernel has ended.
    """
    UID_LOCKS.mkdir(mode=0o700, exist_ok=True)
    for slot in range(UID_SLOTS):
        descriptor = os.open(UID_LOCKS / f"{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            continue
        return base + slot, descriptor
    raise GradingError(f"more than {UID_SLOTS} kernels are running on this machine: wait for some to end")


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager that starts the kernel in the sandbox of this module (see its docstring).

    The limits are set in ``nbgrader_config.py``, e.g. ``c.SandboxedKernelManager.memory_limit_mb = 2048``.
    """

    memory_limit_mb = Integer(4096, help="Address space of the kernel, in MiB (RLIMIT_AS).").tag(config=True)
    cpu_time_limit_s = Integer(
        600,
        help="CPU time of the kernel, all cells together, in seconds "
        "(RLIMIT_CPU); the kernel is killed when it runs out.",
    ).tag(config=True)
    max_processes = Integer(512, help="Processes and threads of the sandbox's user (RLIMIT_NPROC).").tag(
        config=True
    )
    max_file_size_mb = Integer(
        256,
        help="Size of any file the kernel writes, in MiB (RLIMIT_FSIZE); also the size of its private /tmp.",
    ).tag(config=True)
    uid_base = Integer(
        200_000,
        help="When grading as root, kernels run as user ids uid_base, uid_base + 1, ... "
        "(one per running kernel); no account may use them.",
    ).tag(config=True)
    pass_environment = List(
        Unicode(),
        [
            "NBGRADER_EXECUTION",
            "OMP_NUM_THREADS",
            "MKL_NUM_THREADS",
            "PYTHONHASHSEED",
            "LANG",
            "LC_ALL",
            "TZ",
        ],
        help="Environment variables the kernel inherits; it gets no others.",
    ).tag(config=True)

    private_folder: Path | None = None  # the folder of the kernel's sockets, if the caller makes it
    _private: Path | None = None
    _uid: int = -1
    _uid_lock: int | None = None

    def limits(self) -> dict[str, int]:
        """``prlimit``'s options for this kernel."""
        mebibyte = 1024 * 1024
        return {
            "as": self.memory_limit_mb * mebibyte,
            "cpu": self.cpu_time_limit_s,
            "nproc": self.max_processes,
            "fsize": self.max_file_size_mb * mebibyte,
        }

    def environment(self) -> dict[str, str]:
        """The kernel's whole environment."""
        environment = {name: os.environ[name] for name in self.pass_environment if name in os.environ}
        environment.update(
            PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin",
            HOME="/tmp",
            USER="student",
            IPYTHONDIR="/tmp/ipython",
            MPLCONFIGDIR="/tmp/matplotlib",
            JUPYTER_RUNTIME_DIR=str(self._private),
            PYTHONNOUSERSITE="1",
        )
        return environment

    async def _async_pre_start_kernel(self, **kw: Any) -> tuple[list[str], dict[str, Any]]:
        self._private = self.private_folder or Path(tempfile.mkdtemp(prefix="kernel-"))
        self.transport = "ipc"
        self.ip = str(self._private / "socket")
        self.connection_file = str(self._private / "connection.json")
        if self.kernel_spec is not None:
            self.kernel_spec.interrupt_mode = "message"  # a signal would not reach it in its PID namespace
        if is_root():
            if self._uid_lock is None:
                self._uid, self._uid_lock = reserve_uid(self.uid_base)
            chown_tree(self._private, self._uid)
            chown_tree(Path(kw.get("cwd") or os.getcwd()), self._uid)
        return await super()._async_pre_start_kernel(**kw)

    def write_connection_file(self, **kwargs: Any) -> None:
        super().write_connection_file(**kwargs)
        if is_root():
            chown_tree(Path(self.connection_file), self._uid)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        command = super().format_kernel_cmd(extra_arguments)
        workdir = Path(self._launch_args.get("cwd") or os.getcwd()).resolve()
        return sandbox_command(
            command,
            workdir=workdir,
            private=self._private,
            uid=self._uid,
            limits=self.limits(),
            environment=self.environment(),
            tmp_size=self.max_file_size_mb * 1024 * 1024,
        )

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if self._private is not None and not restart:
            if self._private != self.private_folder:
                shutil.rmtree(self._private, ignore_errors=True)
            self._private = None
            if self._uid_lock is not None:
                os.close(self._uid_lock)
                self._uid_lock = None
