"""Benchmarks and development tools, kept out of the product's modules.

``grounded bench NAME`` runs the benchmarks (each measures a hot path against its natural
reference in the same run); ``window_bench`` measures the window, ``screenshots`` makes the
README's pictures from real runs, ``stall`` measures how late the event loop runs. The core and
the window never import this package (import-linter checks it).
"""
