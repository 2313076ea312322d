"""The page "Getting started", followed command by command in a fresh virtual environment.

The test takes the page's shell blocks (the fenced ``bash`` blocks of
``book/getting_started.md``, in order; the ``text`` blocks are for Colab and JupyterHub) and
runs them as a student would, in an empty folder that holds Chapter 1's exercise as the
chapter's download link gives it. Two things differ from a student's computer, and only
these:

* the repository address (``{{ repository_url }}``) is a Git repository made from this
  working tree, so that what is tested is what would be pushed;
* ``--index-url https://download.pytorch.org/whl/cpu`` is left out: there is no internet
  here, and the machine's own package mirror (its pip configuration) holds the same CPU
  build of PyTorch.

What the commands printed is kept in ``_build/getting-started.txt``.

``jupyter lab`` is started without a browser (and allowed to run as root, as CI does), and
stopped once its server answers. Then the
exercise is validated untouched (``nbgrader validate`` must report the parts not written
yet), and again with the solutions filled in (it must report success).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.nbgrader_course import REPO, cells_by_grade_id, solution_ids

pytestmark = pytest.mark.slow

PAGE = REPO / "book" / "getting_started.md"
TRANSCRIPT = REPO / "_build" / "getting-started.txt"
EXERCISE = "a1_ngrams"
BASH_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.DOTALL | re.MULTILINE)
CPU_INDEX = " --index-url https://download.pytorch.org/whl/cpu"
# `jupyter lab NOTEBOOK`, run in the background until its server answers, then stopped (as root,
# on a CI machine, JupyterLab must be told that root may run it).
JUPYTER_LAB = """
jupyter_lab() {
    local root=(); [ "$(id -u)" = 0 ] && root=(--ServerApp.allow_root=True)
    jupyter lab "$@" --no-browser --ServerApp.port=0 "${root[@]}" >lab.log 2>&1 &
    local server=$!
    for _ in $(seq 240); do
        if grep -q "http://127.0.0.1:[0-9]*/lab" lab.log; then
            kill "$server"; wait "$server" || true
            echo "JupyterLab started: $(grep -o 'http://127.0.0.1:[0-9]*/lab' lab.log | head -1)"
            return 0
        fi
        kill -0 "$server" 2>/dev/null || { cat lab.log; return 1; }
        sleep 0.5
    done
    cat lab.log; kill "$server"; return 1
}
"""


def page_commands() -> list[str]:
    """The command lines of the page's bash blocks, in order."""
    blocks = BASH_BLOCK.findall(PAGE.read_text(encoding="utf-8"))
    assert blocks, f"{PAGE} has no ```bash blocks"
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def snapshot_repository(target: Path) -> Path:
    """A Git repository holding this working tree's files (tracked and new, not ignored)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    git = ["git", "-c", "user.name=course", "-c", "user.email=course@localhost"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "snapshot"]):
        subprocess.run([*git, *args], cwd=target, check=True)
    return target


def student_command(line: str, repository: Path) -> str:
    # file://localhost/…: pip does not take a requirement "name @ git+file:///…" (empty host).
    address = f"file://localhost{repository.as_posix()}"
    line = line.replace("{{ repository_url }}", address).replace(CPU_INDEX, "")
    return re.sub(r"^jupyter lab\b", "jupyter_lab", line)


def run_bash(script: str, cwd: Path, timeout: int) -> str:
    # A student's shell: the system's Python first on the PATH, not this test's environment.
    own_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(part for part in os.environ["PATH"].split(os.pathsep) if part != own_bin)
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONPATH")}
    result = subprocess.run(["bash", "-c", script], cwd=cwd, env={**env, "PATH": path},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    output = result.stdout
    assert result.returncode == 0, f"the commands failed ({result.returncode}):\n{script}\n{output[-6000:]}"
    return output


def with_solutions(notebook_path: Path) -> None:
    """Fill the exercise's answer cells with the solution code, as a student would write it."""
    solution = nbformat.read(REPO / "solutions" / EXERCISE / f"{EXERCISE}.ipynb", as_version=4)
    answers = {grade_id: cells_by_grade_id(solution)[grade_id].source for grade_id in solution_ids(solution)}
    exercise = nbformat.read(notebook_path, as_version=4)
    for grade_id, cell in cells_by_grade_id(exercise).items():
        if grade_id in answers:
            cell.source = "\n".join(line for line in answers[grade_id].splitlines()
                                    if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))
    nbformat.write(exercise, notebook_path)


def test_the_pages_commands_install_the_course_and_validate_an_exercise(tmp_path):
    repository = snapshot_repository(tmp_path / "repository")
    student = tmp_path / "student"
    student.mkdir()
    notebook = student / f"{EXERCISE}.ipynb"
    shutil.copy(REPO / "exercises" / EXERCISE / notebook.name, notebook)

    commands = [student_command(line, repository) for line in page_commands()]
    assert any(line.startswith("nbgrader validate") for line in commands)
    output = run_bash("set -euo pipefail\n" + JUPYTER_LAB + "\n".join(commands), student, timeout=1500)
    assert re.search(r"^cpu$", output, re.MULTILINE), "the check of the installation prints the device"
    assert "JupyterLab started" in output
    assert "NotImplementedError" in output and "Success!" not in output, output[-3000:]

    with_solutions(notebook)
    activate = next(line for line in commands if line.startswith("source "))
    validate = [line for line in commands if line.startswith("nbgrader validate")]
    solved = run_bash("\n".join(["set -euo pipefail", activate, *validate]), student, timeout=600)
    TRANSCRIPT.parent.mkdir(exist_ok=True)
    TRANSCRIPT.write_text("\n".join(["$ " + "\n$ ".join(commands), output, "# the exercise solved:",
                                     "$ " + "\n$ ".join(validate), solved]), encoding="utf-8")
    assert "Success! Your notebook passes all the tests." in solved, solved[-3000:]
    assert shlex.split(validate[0])[-1] == notebook.name
