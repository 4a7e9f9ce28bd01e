"""Numbered schema migrations (``NNNN_name.py``, each with ``up(database)``), run in order."""
