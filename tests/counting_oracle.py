"""An EMT oracle that counts its evaluations, for tests of the oracle-call accounting; name it
in a scenario as ``counting_oracle.CountingEMT`` (in-process runs only: the count is a class
attribute of this process)."""
from ase.calculators.emt import EMT


class CountingEMT(EMT):
    calls = 0

    def calculate(self, *args, **kwargs):
        type(self).calls += 1
        return super().calculate(*args, **kwargs)
