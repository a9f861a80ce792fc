"""reclib: a notebook-driven tutorial and reference kit for recommender systems.

Subpackages follow the notebooks in reading order and data flows one way:
``data`` -> ``features`` -> ``cf`` / ``models`` (+ ``training``) -> ``evaluation``;
``interactive`` sits on top. ``reclib.base`` holds the one model interface shared by
every recommender, and ``reclib.notebook`` records metrics from inside notebooks.
"""

__version__ = "0.1.0"
