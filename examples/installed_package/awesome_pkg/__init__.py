"""A provider class shipped as an ordinary package (see pyproject.toml's entry points)."""
