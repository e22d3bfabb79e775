"""Recorder drivers: one module per recorder family, the device table (``registry``), the drivers'
own error tree, and in ``drivers.sim`` the simulated fleet.

The lowest layer: nothing here imports ``daemon``, and no production driver imports
``drivers.sim`` (tests/test_layering.py)."""
