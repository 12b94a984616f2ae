"""Where and how the loop runs: executors (in-process or Ray tasks), Ray start-up with
authentication and loopback (``ray_setup``), progress display, machine and software records,
keyed random streams and atomic file writes. Nothing here knows about potentials."""
