"""Getting started: ``lynkr init`` (the setup wizard), ``lynkr env`` and ``lynkr claude``."""
