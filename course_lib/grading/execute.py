"""Executing one hand-in for the parallel grader: nbgrader's ``Execute``, hardened.

:class:`GradingExecute` is nbgrader's ``Execute`` preprocessor with four changes, so that a bad
hand-in is graded with a reason instead of stopping the grader:

* the kernel runs in the sandbox of ``sandbox`` (unless ``sandboxed`` is off);
* a kernel that dies (``os._exit``, a segmentation fault, the CPU time limit) or stops
  answering (a loop that ignores the interrupt sent at the cell's timeout) ends the run with
  an error on the cell it was running and on every later cell, so the tests that ran keep
  their points and the others score 0 (nbgrader would give a test cell that never ran full
  marks, and ``nbgrader autograde`` gives up on the whole notebook);
* a cell's output is capped (``max_output_bytes``): the rest is dropped as it arrives, with a note;
* the tampering checks of ``integrity`` and ``guard``: the student's cells are scanned
  before the run (the findings go to ``<notebook>.flags.json`` beside the notebook, for the
  instructor), and the guard checks every test cell in the kernel.
"""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager, KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Bool, Integer

from course_lib.grading import integrity
from course_lib.grading.files import write_atomically
from course_lib.grading.sandbox import SandboxedKernelManager

FLAGS_SUFFIX = ".flags.json"  # <notebook>.flags.json: the tampering findings of a hand-in


def flags_path(notebook: Path) -> Path:
    """Where the findings of the tampering scan of ``notebook`` are written."""
    return notebook.with_name(notebook.stem + FLAGS_SUFFIX)


def _error(ename: str, evalue: str) -> NotebookNode:
    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def _death_reason(km: KernelManager | None) -> str:
    """Why the kernel stopped, from its exit status, in words."""
    provisioner = getattr(km, "provisioner", None)
    process = getattr(provisioner, "process", None)
    status = process.poll() if process is not None else None
    if status is None:
        return "the kernel died"
    number = -status if status < 0 else status - 128 if status > 128 else None
    if number is not None and number in signal.Signals._value2member_map_:
        name = signal.Signals(number).name
        hint = {
            "SIGKILL": " (the CPU time limit, or the machine ran out of memory)",
            "SIGXCPU": " (the CPU time limit)",
            "SIGSEGV": " (a segmentation fault)",
        }.get(name, "")
        return f"the kernel died: killed by {name}{hint}"
    return f"the kernel died: it exited with status {status}"


class GradingExecute(Execute):
    """nbgrader's ``Execute`` in the sandbox, surviving dead kernels, capping outputs, guarding the tests."""

    sandboxed = Bool(True, help="Run the kernel in the sandbox (course_lib.grading.sandbox).").tag(
        config=True
    )
    max_output_bytes = Integer(1_000_000, help="Output kept per cell, in bytes; errors are always kept.").tag(
        config=True
    )

    def create_kernel_manager(self) -> KernelManager:
        self.kernel_manager_class = SandboxedKernelManager if self.sandboxed else AsyncKernelManager
        km = super().create_kernel_manager()
        if isinstance(km, SandboxedKernelManager):
            km.private_folder = self._startup_folder
        return km

    def preprocess(
        self, nb: NotebookNode, resources: Any = None, km: KernelManager | None = None
    ) -> tuple[NotebookNode, dict[str, Any]]:
        notebook = Path(resources["metadata"]["path"]) / f"{resources['unique_key']}.ipynb"
        findings = integrity.scan_notebook(nb)
        self._startup_folder = Path(tempfile.mkdtemp(prefix="kernel-"))
        plan = self._startup_folder / "guard.json"
        plan.write_text(json.dumps(integrity.guard_plan(nb)), encoding="utf-8")
        startup = f"__import__('course_lib.grading.guard', fromlist=['install']).install({str(plan)!r})"
        self.extra_arguments = [*self.extra_arguments, f"--IPKernelApp.exec_lines={[startup]!r}"]
        self._output_bytes: dict[int, int] = {}
        try:
            self._execute_all(nb, resources, km)
        finally:
            shutil.rmtree(self._startup_folder, ignore_errors=True)
        write_atomically(flags_path(notebook), json.dumps([vars(finding) for finding in findings], indent=1))
        return self.nb, self.resources

    def _execute_all(self, nb: NotebookNode, resources: Any, km: KernelManager | None) -> None:
        """nbconvert's ``ExecutePreprocessor.preprocess``, with a dead kernel ending the run cell by cell."""
        NotebookClient.__init__(self, nb, km)  # as nbconvert does: each run starts from a fresh client
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        with self.setup_kernel():
            info = self.wait_for_reply(self.kc.kernel_info())
            self.nb.metadata["language_info"] = info["content"]["language_info"]
            for index, cell in enumerate(self.nb.cells):
                try:
                    self.preprocess_cell(cell, resources, index)
                except DeadKernelError:
                    self._mark_not_run(index, _death_reason(self.km))
                    break
                except CellTimeoutError:
                    self._mark_not_run(
                        index,
                        f"the kernel stopped answering: still busy {self.timeout} s after the "
                        "cell's timeout and an interrupt (a loop that ignores interrupts?)",
                    )
                    break
        self.set_widgets_metadata()

    def _mark_not_run(self, dead_at: int, reason: str) -> None:
        """An error on the cell the kernel was lost in and on every later code cell: no test passes unrun."""
        for index, cell in enumerate(self.nb.cells[dead_at:], start=dead_at):
            if cell.cell_type != "code":
                continue
            if index == dead_at:
                cell.outputs.append(_error("DeadKernelError", f"{reason} while this cell ran"))
            else:
                cell.outputs = [_error("DeadKernelError", f"not run: {reason} in an earlier cell")]

    def output(
        self, outs: list[NotebookNode], msg: dict[str, Any], display_id: str | None, cell_index: int
    ) -> NotebookNode | None:
        if msg["msg_type"] == "error":
            return super().output(outs, msg, display_id, cell_index)
        size = len(json.dumps(msg["content"]))
        used = self._output_bytes.get(cell_index, 0)
        self._output_bytes[cell_index] = used + size
        if used + size <= self.max_output_bytes:
            return super().output(outs, msg, display_id, cell_index)
        if used <= self.max_output_bytes:
            note = new_output(
                "stream",
                name="stderr",
                text=f"\n[the grader dropped the rest of this cell's output: over "
                f"{self.max_output_bytes:,} bytes]\n",
            )
            outs.append(note)
        return None
