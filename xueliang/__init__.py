"""Composition root: the root config model, the wiring of one service, and the command line.

Nothing in `ingest`, `detectors` or `bridge` imports this package.
"""
__version__ = "0.1.0"
