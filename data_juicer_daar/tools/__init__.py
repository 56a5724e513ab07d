"""The tools around the method: the ``daar`` command, the demo corpus and ``daar report``."""
