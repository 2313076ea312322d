"""Shared library of the course "Recurrent Neural Networks and Language Models"."""

__version__ = "0.1.0"
