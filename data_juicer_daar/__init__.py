"""DaaR (Diversity as a Reward) data selection for Data-Juicer.

Importing the package registers its operators with Data-Juicer; installing it makes them
discoverable through the ``data_juicer.ops`` entry point, so recipes need no extra paths.
"""

from . import ops  # noqa: F401  (registers the operators)
from .dj import loaders  # noqa: F401  (registers the saved-dataset source)
from .version import __version__

__all__ = ["__version__"]
