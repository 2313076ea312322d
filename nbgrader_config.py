"""nbgrader configuration for the course.

The nbgrader source folder is ``solutions/`` (notebooks with solutions and hidden tests)
and its release folder is ``exercises/`` (the student notebooks, committed):

    nbgrader generate_assignment a1_ngrams --force

rewrites ``exercises/a1_ngrams/`` from ``solutions/a1_ngrams/``.
"""

c = get_config()  # noqa: F821 (provided by nbgrader when it reads this file)

c.CourseDirectory.course_id = "rnn-language-models"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.db_url = "sqlite:///gradebook.db"

# Grading runs every cell of a student's notebook with this limit per cell (seconds): a cell
# that runs longer (an endless loop, say) is interrupted, recorded as an error, and grading
# goes on with the next cell. A correct notebook runs in well under a minute on a CPU.
c.Execute.timeout = 60

# A graded cell the student deleted comes back from the gradebook when the notebook is graded
# (with a note in the cell), so its tests fail instead of being skipped.
c.OverwriteCells.add_missing_cells = True
