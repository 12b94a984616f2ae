"""An EMT oracle that counts its evaluations, for tests of the oracle-call accounting; name it
in a scenario as ``counting_oracle.CountingEMT`` (in-process runs only: the count is a class
attribute of this process)."""
from ase.calculators.emt import EMT


class CountingEMT(EMT):
    calls = 0

    def calculate(self, *args, **kwargs):
        type(self).calls += 1
        return super().calculate(*args, **kwargs)


class FailingOnSynthetic(CountingEMT):
    """Fails (ASE's ``CalculationFailed``, as an SCF that does not converge) on every structure a
    model made, after counting the call; labels real structures as EMT does."""

    def calculate(self, atoms=None, *args, **kwargs):
        if atoms is not None and atoms.info.get("origin") == "synthetic":
            type(self).calls += 1
            from ase.calculators.calculator import CalculationFailed

            raise CalculationFailed("SCF not converged")
        return super().calculate(atoms, *args, **kwargs)


class FailsFarOut(EMT):
    """EMT that fails, as an SCF that does not converge, on a structure whose first atom lies
    beyond z = 50 Å (ASE's ``CalculationFailed``: the calculation ran, on a bad structure)."""

    def calculate(self, atoms=None, *args, **kwargs):
        if atoms is not None and atoms.positions[0, 2] > 50.0:
            from ase.calculators.calculator import CalculationFailed

            raise CalculationFailed("SCF not converged in 250 cycles")
        return super().calculate(atoms, *args, **kwargs)
