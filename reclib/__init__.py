"""reclib: a notebook-driven tutorial and reference kit for recommender systems.

Subpackages follow the notebooks in reading order and data flows one way:
``data`` (01) -> ``features`` (03, 04) -> ``cf`` (02) / ``models`` (04-07, with ``training``)
-> ``evaluation`` -> ``serving``; no subpackage imports one to its right. Shared roots:
``reclib.base`` (the one ``Recommender`` interface and the deterministic ``top_k``),
``reclib.checks`` (argument checks), ``reclib.io`` (atomic writes) and ``reclib.notebook``
(metric records read back from executed notebooks).
"""

__version__ = "0.1.0"
