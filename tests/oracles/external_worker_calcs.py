"""Calculators that misbehave on purpose, for the external-oracle worker tests: imported by the
worker process (its ``pythonpath`` names this directory), never by the tests themselves."""
import os
import time

from ase.calculators.emt import EMT


class Dying(EMT):
    """EMT whose process dies in the middle of a calculation while the number in ``counter``
    (a file) is positive, counting it down: a worker lost mid-call, a given number of times."""

    def __init__(self, counter: str, **kwargs):
        super().__init__(**kwargs)
        self.counter = counter

    def calculate(self, *args, **kwargs):
        left = int(open(self.counter).read())
        if left > 0:
            with open(self.counter, "w") as handle:
                handle.write(str(left - 1))
            os._exit(3)
        super().calculate(*args, **kwargs)


class Slow(EMT):
    """EMT that takes ``seconds`` per calculation."""

    def __init__(self, seconds: float, **kwargs):
        super().__init__(**kwargs)
        self.seconds = seconds

    def calculate(self, *args, **kwargs):
        time.sleep(self.seconds)
        super().calculate(*args, **kwargs)


class NeverReady(EMT):
    """A calculator whose construction never finishes."""

    def __init__(self, **kwargs):
        time.sleep(3600)

