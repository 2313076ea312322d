"""Tampering with the tests: the static scan of the editable cells, and the guard inside a real IPython shell.

The static scan (``integrity.scan_notebook``) must flag each kind of tampering with a reason the
instructor can read, and nothing in the solution cells of the real assignments. The guard
(``guard.install`` with ``integrity.guard_plan``'s plan) runs in a real ``InteractiveShell``
over a small nbgrader-style notebook: honest and wrong solutions are graded as usual, and every
planted exploit, which passes the test without the guard, fails it with ``TamperingError``.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import nbformat
import numpy
import pytest
import torch
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from traitlets.config import Config

from course_lib.grading import guard
from course_lib.grading.guard import TamperingError
from course_lib.grading.integrity import Finding, guard_plan, scan_notebook
from course_lib.models import numpy_rnn
from tests.nbgrader_course import REPO, assignments, notebook_name, solution_ids

IMPORTS = "import numpy as np\nfrom course_lib.models import numpy_rnn as reference_numpy\n"
HONEST = "def double(x):\n    return 2 * x\n"
WRONG = "def double(x):\n    return x\n"
# The test cells of the small notebook, by grade_id: each one can be fooled by some exploit.
TESTS = {
    "test_allclose": "assert np.allclose(double(1.0), 2.0)\n",
    "test_abs": "assert abs(double(-3.0) + 6.0) < 1e-12\n",
    "test_reference": "_a = np.array([0.5, -1.0])\n"
    'assert np.array_equal(double(_a), reference_numpy.activate(2 * _a, "linear"))\n',
    "test_torch_allclose": "import torch\n"
    "assert torch.allclose(torch.tensor(double(1.0)), torch.tensor(2.0))\n",
    "test_assert_close": "import torch\n"
    "torch.testing.assert_close(torch.tensor(double(1.0)), torch.tensor(2.0))\n",
}


def nbgrader(grade_id: str, *, locked: bool, solution: bool = False, grade: bool = False) -> dict:
    """The cell metadata nbgrader writes."""
    metadata = {
        "grade_id": grade_id,
        "locked": locked,
        "solution": solution,
        "grade": grade,
        "schema_version": 3,
    }
    return {"nbgrader": {**metadata, "points": 1} if grade else metadata}


def small_notebook(solution: str, tests: dict[str, str] = TESTS) -> nbformat.NotebookNode:
    """A locked imports cell, the student's solution cell, then locked grade cells (the tests)."""
    return new_notebook(
        cells=[
            new_markdown_cell("# Doubling", metadata=nbgrader("title", locked=True)),
            new_code_cell(IMPORTS, metadata=nbgrader("imports", locked=True)),
            new_code_cell(solution, metadata=nbgrader("double", locked=False, solution=True)),
            *(
                new_code_cell(source, metadata=nbgrader(grade_id, locked=True, grade=True))
                for grade_id, source in tests.items()
            ),
        ]
    )


# ----------------------------------------------------------------------------- the static scan

SCAN_IMPORTS = IMPORTS + "import torch\nfrom course_lib.vocab import Vocabulary\n"
SCAN_TEST = TESTS["test_allclose"] + TESTS["test_abs"] + 'assert len(Vocabulary(["a"])) > 0\n'


def scan(student_source: str) -> list[Finding]:
    """The findings of a notebook whose only editable cell holds ``student_source``."""
    notebook = new_notebook(
        cells=[
            new_code_cell(SCAN_IMPORTS, metadata=nbgrader("imports", locked=True)),
            new_code_cell(student_source, metadata=nbgrader("double", locked=False, solution=True)),
            new_code_cell(SCAN_TEST, metadata=nbgrader("test", locked=True, grade=True)),
        ]
    )
    return scan_notebook(notebook)


def assert_found(student_source: str, line: int, reason: str) -> None:
    """The scan of the cell has a finding on ``line`` whose reason contains ``reason``."""
    findings = scan(student_source)
    assert any(finding.line == line and reason in finding.reason for finding in findings), findings
    assert all(finding.cell == "double" for finding in findings)


@pytest.mark.parametrize(
    ("source", "line", "reason"),
    [
        (
            "np.allclose = lambda *args, **kwargs: True\n",
            1,
            "assigns to np.allclose, an attribute of the imported module numpy",
        ),
        (
            "torch.testing.assert_close = print\n",
            1,
            "assigns to torch.testing.assert_close, an attribute of the imported module torch",
        ),
        (
            'np.testing.__dict__["assert_allclose"] = print\n',
            1,
            "assigns to np.testing.__dict__['assert_allclose'], an item inside the imported module numpy",
        ),
        ("np.pi += 1\n", 1, "modifies np.pi, an attribute of the imported module numpy"),
        ("del np.allclose\n", 1, "deletes np.allclose, an attribute of the imported module numpy"),
        ("np.allclose: object = print\n", 1, "assigns to np.allclose"),
        (
            "reference_numpy.rnn_step_forward = print\n",
            1,
            "assigns to reference_numpy.rnn_step_forward, an attribute of course_lib.models.numpy_rnn",
        ),
        ("def double(x):\n    np.allclose = print\n    return x\n", 2, "assigns to np.allclose"),
        (
            "import builtins\nbuiltins.abs = print\n",
            2,
            "assigns to builtins.abs, an attribute of the builtins",
        ),
        ('__builtins__["abs"] = print\n', 1, "assigns to __builtins__['abs'], an item inside the builtins"),
        ('getattr(np, "testing").assert_allclose = print\n', 1, "an attribute of the imported module numpy"),
    ],
    ids=[
        "module",
        "submodule",
        "module dict",
        "augmented",
        "del",
        "annotated",
        "reference function",
        "inside a function",
        "builtins module",
        "__builtins__",
        "getattr",
    ],
)
def test_scan_flags_changes_to_imported_modules_and_builtins(source: str, line: int, reason: str) -> None:
    assert_found(source, line, reason)


@pytest.mark.parametrize(
    ("source", "line", "reason"),
    [
        ('setattr(np, "allclose", print)\n', 1, "calls setattr on np, the imported module numpy"),
        ('import builtins\ndelattr(builtins, "abs")\n', 2, "calls delattr on builtins, the builtins"),
        ('setattr(__builtins__, "len", print)\n', 1, "calls setattr on __builtins__, the builtins"),
    ],
    ids=["setattr module", "delattr builtins", "setattr __builtins__"],
)
def test_scan_flags_setattr_and_delattr(source: str, line: int, reason: str) -> None:
    assert_found(source, line, reason)


@pytest.mark.parametrize(
    ("source", "line", "reason"),
    [
        (
            "def abs(x):\n    return 0\n",
            1,
            "binds abs at the top level of the cell, shadowing the builtin abs",
        ),
        (
            "class Fake:\n    pass\n\n\nnp = Fake()\n",
            5,
            "binds np at the top level of the cell, replacing the np of the locked cell imports "
            "for the later",
        ),
        ("class Vocabulary:\n    pass\n", 1, "binds Vocabulary"),
        ("import torch as np\n", 1, "binds np"),
        ("from math import fabs as abs\n", 1, "binds abs"),
        ("if True:\n    len = lambda x: 1\n", 2, "binds len"),
        ("for abs in range(3):\n    pass\n", 1, "binds abs"),
        ('with open("notes.txt") as np:\n    pass\n', 1, "binds np"),
        ("try:\n    pass\nexcept Exception as reference_numpy:\n    pass\n", 3, "binds reference_numpy"),
        ("(reference_numpy := None)\n", 1, "binds reference_numpy"),
        (
            "__import__ = print\n",
            1,
            "binds __import__ at the top level of the cell, a name the grader's checks",
        ),
    ],
    ids=[
        "def builtin",
        "rebind import",
        "class",
        "import as",
        "from import as",
        "inside if",
        "for target",
        "with as",
        "except as",
        "walrus",
        "guard name",
    ],
)
def test_scan_flags_top_level_bindings_of_names_the_locked_cells_use(
    source: str, line: int, reason: str
) -> None:
    assert_found(source, line, reason)


@pytest.mark.parametrize(
    "source",
    [
        "import numpy as np\nfrom course_lib.models import numpy_rnn as reference_numpy\n",
        "total = sum([1, 2])\nsum = 0\n",
        "def double(x):\n    abs = len = 0\n    return 2 * x\n",
        "_ = [abs for abs in range(3)]\n",
        "import math\n\n\ndef double(x):\n    self = lambda: None\n    self.x = math.pi\n    return 2 * x\n",
        "def double(x):\n    return 2 * x\n\n\ndouble(\n",
    ],
    ids=["same imports", "unused builtin", "locals", "comprehension", "own objects", "syntax error"],
)
def test_scan_allows_ordinary_code(source: str) -> None:
    assert scan(source) == []


def test_scan_flags_star_imports() -> None:
    assert_found("from numpy import *\n", 1, "imports every public name of numpy with `from numpy import *`")


# (source, reason) of the tools that reach around the scan, each on line 1 of its cell.
REACHING_TOOLS = [
    ('exec("abs = None")', "uses exec"),
    ('eval("1")', "uses eval"),
    ('compile("1", "x", "eval")', "uses compile"),
    ('__import__("numpy")', "uses __import__"),
    ('globals()["abs"] = None', "uses globals"),
    ("locals()", "uses locals"),
    ("vars()", "uses vars"),
    ("b = __builtins__", "uses __builtins__"),
    ("get_ipython().ast_transformers.clear()", "uses get_ipython"),
    ("get_ipython().input_transformers_cleanup.append(str)", "uses get_ipython"),
    ("%timeit double(1)", "uses get_ipython"),
    ("!ls", "uses get_ipython"),
    *(
        (f"print(thing.{attribute})", f"uses the attribute {attribute}")
        for attribute in [
            "__dict__",
            "__globals__",
            "__code__",
            "__builtins__",
            "__closure__",
            "__defaults__",
            "__kwdefaults__",
            "__subclasses__",
            "__bases__",
            "__mro__",
            "f_globals",
            "f_locals",
            "f_back",
            "tb_frame",
            "gi_frame",
        ]
    ),
    *(
        (f"import sys as system; system.{attribute}", f"uses sys.{attribute}")
        for attribute in [
            "modules",
            "_getframe",
            "settrace",
            "setprofile",
            "meta_path",
            "path_hooks",
            "excepthook",
            "displayhook",
            "addaudithook",
        ]
    ),
    ("from sys import modules", "imports sys.modules"),
    ("import builtins", "imports builtins"),
    ("import ctypes.util", "imports ctypes.util"),
    ("import gc", "imports gc"),
    ("from importlib import reload", "imports importlib"),
    ("import inspect", "imports inspect"),
    ("from unittest import mock", "imports unittest.mock"),
    ("import unittest.mock", "imports unittest.mock"),
    ("from IPython import get_ipython", "imports IPython"),
    ("import ipykernel", "imports ipykernel"),
    ("from course_lib.grading import guard", "imports course_lib.grading, which reaches into"),
    ("import course_lib.grading.guard", "imports course_lib.grading.guard"),
]


@pytest.mark.parametrize(("source", "reason"), REACHING_TOOLS)
def test_scan_flags_tools_that_reach_around_it(source: str, reason: str) -> None:
    assert_found(source + "\n", 1, reason)


def test_scan_reports_each_finding_once_with_the_cell_of_a_cell_without_metadata() -> None:
    notebook = small_notebook(HONEST)
    notebook.cells.append(new_code_cell("np.allclose = np.allclose = print\n\nnp.allclose = print\n"))
    reason = "assigns to np.allclose, an attribute of the imported module numpy"
    label = f"cell {len(notebook.cells)}"  # 1-based, markdown cells included
    assert scan_notebook(notebook) == [Finding(label, 1, reason), Finding(label, 3, reason)]


def test_scan_reads_only_the_cells_students_may_edit() -> None:
    notebook = small_notebook(HONEST, {"test_patch": "np.allclose = print\ndef abs(x):\n    return 0\n"})
    assert scan_notebook(notebook) == []


@pytest.mark.parametrize("assignment", assignments())
def test_no_finding_in_the_solution_cells_of_the_assignments(assignment: str) -> None:
    notebook = nbformat.read(REPO / "solutions" / assignment / notebook_name(assignment), as_version=4)
    solutions = set(solution_ids(notebook))
    assert solutions
    assert [finding for finding in scan_notebook(notebook) if finding.cell in solutions] == []


def sha256(text: str) -> str:
    """The hex sha256 of a cell's source: the key of the cell in the guard's plan."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_guard_plan_describes_the_locked_cells() -> None:
    notebook = small_notebook(HONEST)
    plan = guard_plan(notebook)
    assert json.loads(json.dumps(plan)) == plan
    entries = {
        cell.metadata["nbgrader"]["grade_id"]: plan["cells"][sha256(cell.source)]
        for cell in notebook.cells
        if cell.cell_type == "code" and cell.metadata["nbgrader"]["locked"]
    }
    assert entries == {
        "imports": {"role": "locked", "binds": ["np", "reference_numpy"], "loads": []},
        "test_allclose": {"role": "test", "binds": [], "loads": ["double", "np"]},
        "test_abs": {"role": "test", "binds": [], "loads": ["abs", "double"]},
        "test_reference": {"role": "test", "binds": ["_a"], "loads": ["double", "np", "reference_numpy"]},
        "test_torch_allclose": {"role": "test", "binds": ["torch"], "loads": ["double"]},
        "test_assert_close": {"role": "test", "binds": ["torch"], "loads": ["double"]},
    }
    assert len(plan["cells"]) == len(entries)


# ----------------------------------------------------------------------------- the guard in IPython


@pytest.fixture
def pristine_modules():
    """After the test, the builtins and the modules the exploits patch are as they were before."""
    namespaces = [vars(builtins), vars(numpy), vars(numpy_rnn), vars(torch), vars(torch.testing)]
    saved = [dict(namespace) for namespace in namespaces]
    yield
    for namespace, original in zip(namespaces, saved, strict=True):
        for name in namespace.keys() - original.keys():
            del namespace[name]
        namespace.update(original)


@pytest.fixture
def shell(pristine_modules, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A real IPython shell without history, cleared (and the guard removed) after the test."""
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])  # the shell replaces it
    config = Config()
    config.HistoryManager.enabled = False
    yield InteractiveShell.instance(config=config)
    guard.uninstall()
    InteractiveShell.clear_instance()


def install_guard(notebook: nbformat.NotebookNode, directory: Path) -> None:
    """Write the notebook's plan and install the guard in the running shell, as the grader's kernel does."""
    plan = directory / "plan.json"
    plan.write_text(json.dumps(guard_plan(notebook)), encoding="utf-8")
    guard.install(str(plan))


def run_notebook(shell: InteractiveShell, notebook: nbformat.NotebookNode) -> dict[str, ExecutionResult]:
    """Run the code cells in order; their results by grade_id."""
    return {
        cell.metadata["nbgrader"]["grade_id"]: shell.run_cell(cell.source)
        for cell in notebook.cells
        if cell.cell_type == "code"
    }


def error(result: ExecutionResult) -> BaseException | None:
    """The exception the cell failed with, raised before or while it ran."""
    return result.error_before_exec or result.error_in_exec


def test_an_honest_solution_passes_the_guarded_tests(shell: InteractiveShell, tmp_path: Path) -> None:
    notebook = small_notebook(HONEST)
    install_guard(notebook, tmp_path)
    errors = {grade_id: error(result) for grade_id, result in run_notebook(shell, notebook).items()}
    assert errors == dict.fromkeys(["imports", "double", *TESTS], None)


def test_a_wrong_solution_fails_the_guarded_tests_with_assertion_errors(
    shell: InteractiveShell, tmp_path: Path
) -> None:
    notebook = small_notebook(WRONG)
    install_guard(notebook, tmp_path)
    results = run_notebook(shell, notebook)
    assert [type(error(results[grade_id])) for grade_id in TESTS] == [AssertionError] * len(TESTS)


@dataclass(frozen=True)
class Exploit:
    """A solution cell that makes the test ``fooled`` pass with a wrong answer, when nothing guards it."""

    solution: str
    fooled: str  # grade_id of the test cell
    moment: str = guard.BEFORE_TEST  # when the guard sees the change

    def notebook(self) -> nbformat.NotebookNode:
        """The small notebook with the exploit as its solution and the fooled test as its only test."""
        return small_notebook(self.solution, {self.fooled: TESTS[self.fooled]})


EXPLOITS = {
    "patched torch.allclose": Exploit(
        "import torch\ntorch.allclose = lambda *args, **kwargs: True\n" + WRONG, "test_torch_allclose"
    ),
    "patched torch.testing.assert_close": Exploit(
        "import torch\ntorch.testing.assert_close = lambda *args, **kwargs: None\n" + WRONG,
        "test_assert_close",
    ),
    "patched np.allclose": Exploit(
        "import numpy\nnumpy.allclose = lambda *args, **kwargs: True\n" + WRONG, "test_allclose"
    ),
    "patched builtins.abs": Exploit("import builtins\nbuiltins.abs = lambda x: 0\n" + WRONG, "test_abs"),
    "top-level def abs": Exploit("def abs(x):\n    return 0\n\n\n" + WRONG, "test_abs"),
    "np = Fake()": Exploit(
        "class Fake:\n    def allclose(self, *args, **kwargs):\n        return True\n\n\n"
        "np = Fake()\n" + WRONG,
        "test_allclose",
    ),
    "patched reference function": Exploit(
        "reference_numpy.activate = lambda pre_activation, nonlinearity: pre_activation / 2\n" + WRONG,
        "test_reference",
    ),
    # The test looks reference_numpy.activate up after it calls double.
    "patch inside the function": Exploit(
        "def double(x):\n    reference_numpy.activate = lambda pre_activation, kind: x\n    return x\n",
        "test_reference",
        guard.DURING_TEST,
    ),
    "input transformer": Exploit(
        "get_ipython().input_transformers_cleanup.append(\n"
        '    lambda lines: [line.replace("assert ", "assert True or ") for line in lines]\n)\n' + WRONG,
        "test_allclose",
    ),
}


@pytest.mark.parametrize("exploit", EXPLOITS.values(), ids=EXPLOITS.keys())
def test_each_exploit_passes_its_test_without_the_guard(shell: InteractiveShell, exploit: Exploit) -> None:
    results = run_notebook(shell, exploit.notebook())
    assert error(results[exploit.fooled]) is None


@pytest.mark.parametrize("exploit", EXPLOITS.values(), ids=EXPLOITS.keys())
def test_each_exploit_fails_its_guarded_test_with_tampering_error(
    shell: InteractiveShell, tmp_path: Path, exploit: Exploit
) -> None:
    notebook = exploit.notebook()
    assert scan_notebook(notebook), "the static scan flags it too"
    install_guard(notebook, tmp_path)
    results = run_notebook(shell, notebook)
    assert error(results["imports"]) is None and error(results["double"]) is None
    failure = error(results[exploit.fooled])
    assert isinstance(failure, TamperingError), failure
    assert exploit.moment in str(failure) and "cannot be trusted" in str(failure)


def test_the_message_names_what_was_replaced(shell: InteractiveShell, tmp_path: Path) -> None:
    notebook = EXPLOITS["patched np.allclose"].notebook()
    install_guard(notebook, tmp_path)
    message = str(error(run_notebook(shell, notebook)["test_allclose"]))
    assert message.startswith(
        "The notebook changed what this test relies on before this test ran: numpy.allclose was replaced."
    )


@pytest.mark.parametrize(
    "exploit",
    [
        "patched np.allclose",
        "patched builtins.abs",
        "top-level def abs",
        "np = Fake()",
        "patched reference function",
    ],
)
def test_after_catching_an_exploit_the_guard_puts_the_originals_back(
    shell: InteractiveShell, tmp_path: Path, exploit: str
) -> None:
    """The test that caught it fails; the same test again, on the originals, fails as a wrong answer."""
    notebook = EXPLOITS[exploit].notebook()
    fooled = EXPLOITS[exploit].fooled
    notebook.cells.append(nbformat.from_dict({**notebook.cells[-1], "source": TESTS[fooled] + "\n# again\n"}))
    notebook.cells[-1].metadata["nbgrader"]["grade_id"] = "again"
    install_guard(notebook, tmp_path)
    results = run_notebook(shell, notebook)
    assert isinstance(error(results[fooled]), TamperingError)
    assert isinstance(error(results["again"]), AssertionError)


def test_install_deletes_the_plan_so_the_notebook_cannot_read_it(
    shell: InteractiveShell, tmp_path: Path
) -> None:
    install_guard(small_notebook(HONEST), tmp_path)
    assert not (tmp_path / "plan.json").exists()


def failing_line(result: ExecutionResult) -> int:
    """The line of the cell where its error was raised."""
    return traceback.extract_tb(result.error_in_exec.__traceback__)[-1].lineno


def test_the_guard_moves_no_line_number_and_keeps_the_displayed_value(
    shell: InteractiveShell, tmp_path: Path
) -> None:
    tests = {
        "test_lines": "_value = double(1.0)\n_expected = 2.0\nassert np.allclose(_value, _expected)\n_ = 1\n",
        "test_display": "assert isinstance(double(1.0), float)\ndouble(21.0)\n",
    }
    notebook = small_notebook(WRONG, tests)
    unguarded = run_notebook(shell, notebook)
    install_guard(notebook, tmp_path)
    guarded = run_notebook(shell, notebook)
    assert failing_line(unguarded["test_lines"]) == failing_line(guarded["test_lines"]) == 3
    assert unguarded["test_display"].result == guarded["test_display"].result == 21.0


FIRST_IMPORT_SCRIPT = """
import json, sys
from IPython.core.interactiveshell import InteractiveShell
from course_lib.grading import guard
assert "numpy" not in sys.modules, "numpy was imported before the guard"
shell = InteractiveShell.instance()
guard.install(sys.argv[1])
results = [shell.run_cell(source) for source in json.loads(sys.argv[2])]
errors = [type(result.error_before_exec or result.error_in_exec).__name__ for result in results]
print(json.dumps({"errors": errors, "torch imported": "torch" in sys.modules}))
"""


def test_the_guard_watches_numpy_first_imported_after_install(tmp_path: Path) -> None:
    notebook = EXPLOITS["patched np.allclose"].notebook()
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(guard_plan(notebook)), encoding="utf-8")
    sources = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    completed = subprocess.run(
        [sys.executable, "-c", FIRST_IMPORT_SCRIPT, str(plan), json.dumps(sources)],
        cwd=REPO,
        env={"IPYTHONDIR": str(tmp_path / "ipython"), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report == {"errors": ["NoneType", "NoneType", "TamperingError"], "torch imported": False}
