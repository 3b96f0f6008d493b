"""Grounded: private, offline question answering over a person's own files."""

import os as _os

# numpy's OpenBLAS threads spin after each call and starve torch's threads in the next
# embedding (a query took 100 ms instead of 12); our BLAS work is memory-bound matrix-vector
# products that one thread does as fast. Must be set before numpy is first imported.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
