"""Example collapse_sim plugin: the ``morse`` model kind and the ``sliding-window`` policy kind,
registered when collapse_sim reads the entry points in this package's pyproject.toml."""
