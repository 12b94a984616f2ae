"""Oracles: ground truth labels from any ASE calculator, named by import path."""
from collapse_sim.oracles.ase_oracle import ASEOracle

__all__ = ["ASEOracle"]
