"""``daar report`` in three steps: ``load`` (pool + selection), ``plots`` (PNGs), ``page`` (text and HTML)."""
