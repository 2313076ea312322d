"""Grading a whole class with nbgrader: collect, autograde in parallel, feedback and reports.

nbgrader stays the grading engine: its gradebook, its checksums of the locked cells and its
feedback pages. This package runs its steps for a class, from the course folder's root
(the folder holding ``nbgrader_config.py``)::

    python -m course_lib.grading collect downloaded/a1_ngrams.zip --assignment a1_ngrams
    python -m course_lib.grading autograde a1_ngrams
    python -m course_lib.grading report a1_ngrams
    python -m course_lib.grading export canvas --class-list canvas_export.csv

The modules, one job each:

* ``course``: the course folder as nbgrader sees it (configuration, folders, a lock);
* ``gradebook``: every access to nbgrader's database;
* ``collect``: import an LMS download into ``submitted/<student>/<assignment>/``;
* ``worker``: execute one hand-in in a private scratch copy of the course;
* ``record``: write a worker's result into the real gradebook with nbgrader's own code;
* ``autograde``: the pool of workers and the single recording process;
* ``feedback``: nbgrader's HTML feedback page of every graded hand-in;
* ``reports``: the grades as CSV, a per-part summary table and histograms;
* ``exports``: the grades for an LMS: Canvas's and Moodle's import CSVs, Gradescope's results.json.
"""


class GradingError(Exception):
    """A problem the instructor has to fix: the message says what is wrong and how to fix it."""
