"""Experiment configs, one file per experiment of the course.

Each module defines ``get_config(variant=None)``; its docstring's first line is what ``d2ljax
list`` shows, and the docstring carries the command that runs it and the result to expect.
Installed as the package ``d2ljax.configs``.
"""
