"""The docking station: udev hotplug (``hotplug``), the per-recorder dock manager and its states
(``manager``, ``jobs``, ``gate``), the dock check over the driver (``check``), read-only mounting
(``mount``), the watch folder for manual imports (``watchfolder``), the main loop of ``evidock
run`` (``station``), sd_notify (``notify``) and the udev rules generated from the driver table
(``udevrules``).

The top of the daemon: may import every package below it and the drivers.
"""
