"""The one exception a user's input can cause, from the Python API and the command line alike."""


class UsageError(ValueError):
    """A problem with the user's input (a scenario, a path, an option), phrased as one line that
    names it. Raised before anything is written; ``collapse-sim`` prints it and exits with code 2."""
