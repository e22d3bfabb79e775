"""evidock: the station software of a body-worn-recorder docking station.

The package is a library first; `daemon.cli` is a thin command line over it.
"""

__version__ = "0.1.0"
