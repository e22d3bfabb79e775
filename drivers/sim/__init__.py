"""The simulated fleet for tests and the demo: a simulated GA/T 947 recorder on a pty
(``simulator``, ``pty``), its card's footage (``volume``), FAT images (``fatimage``) and the
fault-injecting FUSE filesystem (``faultfs``, ``faultfs_mount``), and a paced link for the
benchmarks' slow sources (``pacing``).

Production drivers never import this package; it may import the drivers.
"""
