"""DaaR (Diversity as a Reward) data selection for Data-Juicer.

Importing the package registers its operators with Data-Juicer; installing it makes them
discoverable through the ``data_juicer.ops`` entry point, so recipes need no extra paths.
"""

from .version import __version__

from . import ops  # noqa: E402,F401  (registers the operators)

__all__ = ["__version__"]
