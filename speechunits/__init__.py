"""speechunits: unsupervised speech unit discovery.

Front ends, WaveNet autoencoders with VQ / piecewise-constant bottlenecks, probes,
unit extraction and ABX evaluation. See README.md and docs/design.md.
"""

__version__ = "0.1.0"
