"""The project's error types: each says, in one line, what was wrong with the user's input.

``daar`` catches ``DaarError`` (and the user's files' ``OSError``) at the top and prints one line;
anything else is a bug in this package and shows its traceback.
"""


class DaarError(Exception):
    """Base of every error this package raises about its inputs (files, models, settings)."""


class ConfigError(DaarError, ValueError):
    """A setting is out of range or names something unknown."""
