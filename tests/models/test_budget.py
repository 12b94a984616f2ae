"""The step budget's passes: epochs without steps, else the fewest whole passes reaching the steps."""
from collapse_sim.models.budget import passes


def test_passes():
    assert passes(12, None, 5) == 12
    assert [passes(12, 216, b) for b in (5, 2, 32, 216, 300)] == [44, 108, 7, 1, 1]
    assert passes(3, 4, 0) == 4  # an empty pass list cannot divide by zero
