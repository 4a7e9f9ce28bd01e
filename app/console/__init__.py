"""What the ``lynkr`` command shows on a terminal while it works."""
