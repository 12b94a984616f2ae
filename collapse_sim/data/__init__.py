"""Data: structures are ``ase.Atoms`` with labels in a SinglePointCalculator and provenance in
``info`` (``structures``); training sets are lists of provenance-tagged pools (``pools``); label
noise (``noise``); extxyz I/O (``io``)."""
