"""Capturing nbgrader's log of one hand-in, to show it only when something went wrong."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def captured(name: str) -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose messages (INFO and above) go only to the returned text buffer.

    Pass the logger to nbgrader's converters (``log=``); read the buffer when the block ends.
    """
    stream = io.StringIO()
    log = logging.getLogger(name)
    log.propagate = False
    log.setLevel(logging.INFO)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(f"[{name.rsplit('.', 1)[-1]} %(levelname)s] %(message)s"))
    log.addHandler(handler)
    try:
        yield log, stream
    finally:
        log.removeHandler(handler)
