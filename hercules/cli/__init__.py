"""The ``hercules`` command line (Typer): ``hercules.cli.main:app``."""
