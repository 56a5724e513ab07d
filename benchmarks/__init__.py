"""Benchmarks of data_juicer_daar: run one with ``bash scripts/bench.sh NAME`` (``python -m benchmarks.NAME``)."""
