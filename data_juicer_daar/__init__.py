"""DaaR (Diversity as a Reward) data selection for Data-Juicer.

The layout follows the data flow and states the boundary:

* ``method/``: the method itself, no Data-Juicer import (a test enforces it): sample -> text
  (``text``) -> features (``models``, ``backbone``) -> domains and their examples (``domains``,
  ``synthesis``) -> pseudo-domains and sub-domains (``pseudo_labels``, ``subdomains``) -> the two
  heads (``heads``, ``training``) -> the bundle (``manifest``, ``bundle``) -> scores (``scoring``)
  -> top-k (``selection``).
* ``dj/``: the Data-Juicer side: the op lifecycle (``op_base``), the reuse rule (``reuse``), the one
  selector signature and its Ray path (``topk``), dropped-row counting, the recipe's paths check
  (``recipe_paths``), the saved-dataset loader, the Ray head watch.
* ``ops/``: the four registered ops, one per file, named as registered.
* ``tools/``: the ``daar`` command (``cli``), ``daar process`` (``process``), the demo corpus,
  ``daar report``.
* Beside them: ``keys`` (every field name and the one table of scores), ``errors`` (every error),
  ``options`` (config fields that are also flags), ``version``.

Importing the package registers its operators with Data-Juicer; installing it makes them
discoverable through the ``data_juicer.ops`` entry point, so recipes need no extra paths.
"""

from . import ops  # noqa: F401  (registers the operators)
from .dj import loaders
from .version import __version__

__all__ = ["__version__"]

loaders.register_when_loaded()  # the ``huggingface_disk`` dataset source (an import hook until Data-Juicer's registry loads)
