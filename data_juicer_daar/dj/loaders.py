"""A Data-Juicer dataset source this plugin adds: a Hugging Face dataset saved to disk.

Data-Juicer's local loader picks a formatter by file suffix, which a ``Dataset.save_to_disk`` folder
(Arrow shards plus JSON metadata) does not fit, and its Hugging Face loader refuses such a folder.
This package registers ``source: huggingface_disk`` for local dataset configs::

    dataset:
      configs:
        - type: local
          source: huggingface_disk
          path: /data/my_saved_dataset      # a folder written by Dataset(Dict).save_to_disk
          split: train                      # for a DatasetDict (default: its only split)

Data-Juicer imports its plugins while its own config module is still loading, before the module
that holds the load-strategy registry can be imported; the registration therefore runs right after
that module loads (``register_when_loaded``, which the package's ``__init__`` calls: importing this
module has no effect), or at once when it already has.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

from ..errors import ConfigError

SOURCE = "huggingface_disk"
REGISTRY_MODULE = "data_juicer.core.data.load_strategy"


def register() -> None:
    """Register the ``huggingface_disk`` load strategy with Data-Juicer's default executor."""
    from data_juicer.core.data.load_strategy import DataLoadStrategyRegistry, DefaultDataLoadStrategy
    from data_juicer.format.formatter import unify_format

    @DataLoadStrategyRegistry.register("default", "local", SOURCE)
    class SavedDatasetLoadStrategy(DefaultDataLoadStrategy):
        """Load a dataset written by ``save_to_disk``, then Data-Juicer's usual format unification."""

        CONFIG_VALIDATION_RULES = {"required_fields": ["path"], "field_types": {"path": str, "split": str}, "custom_validators": {}}

        def load_data(self, **kwargs):
            import datasets

            path = self.ds_config["path"]
            loaded = datasets.load_from_disk(path)
            if isinstance(loaded, datasets.DatasetDict):
                split = self.ds_config.get("split") or (next(iter(loaded)) if len(loaded) == 1 else None)
                if split not in loaded:
                    raise ConfigError(f"{path} holds splits {list(loaded)}: set `split` to one of them in its dataset config")
                loaded = loaded[split]
            return unify_format(loaded, text_keys=self.cfg.text_keys, num_proc=kwargs.get("num_proc", 1), global_cfg=self.cfg)


class _RegisterAfterLoad(importlib.abc.MetaPathFinder):
    """Finds nothing itself: when the registry module is imported, wraps its loader so that
    ``register`` runs as soon as the module has executed."""

    def find_spec(self, name, path, target=None):
        if name != REGISTRY_MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            register()

        spec.loader.exec_module = exec_module
        return spec


def register_when_loaded() -> None:
    """Register the source now if Data-Juicer's registry is loaded, else right after it loads."""
    if REGISTRY_MODULE in sys.modules and hasattr(sys.modules[REGISTRY_MODULE], "DataLoadStrategyRegistry"):
        register()
    elif not any(isinstance(f, _RegisterAfterLoad) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterLoad())
