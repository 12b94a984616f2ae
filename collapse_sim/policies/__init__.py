"""Data policies: given the lineage's history and the pools offered to this generation, which
pools does the next model train on? One module per kind. A policy keeps no state between calls;
its protocol (``policies.base.Policy``) has two phases, because the second needs the oracle's
answers to the first::

    request(history, synthetic, rng, predict_with) -> OracleRequest(fresh_real, indices, note)
    select(history, offered, request, rng) -> Selection(pools, counts)

``history`` is a list of ``GenerationData`` (generation 0 first); ``OracleRequest`` asks for
``fresh_real`` new oracle structures and oracle labels of the synthetic structures at ``indices``,
and carries in ``note`` what the policy decided on the way (``active``'s trust window);
``offered`` (``Offered``) holds the synthetic pool, the fresh real data and ``checked``, each
requested index's oracle-labelled copy; ``predict_with(g, structures)`` lets a policy ask the
lineage's model of generation g (``active``'s committee). ``Selection.counts``: a filtering
policy's kept / oracle-labelled / rejected counts, for the metrics row.
"""
from collapse_sim.policies.base import (
    KINDS,
    GenerationData,
    Offered,
    OracleRequest,
    Policy,
    PolicySettingsBase,
    Selection,
)
from collapse_sim.settings_base import kind_union

# each kind module registers its kind when imported: a new kind is a new module and a line here
from collapse_sim.policies import replace  # noqa: F401  isort: skip
from collapse_sim.policies import accumulate  # noqa: F401  isort: skip
from collapse_sim.policies import accumulate_subsample  # noqa: F401  isort: skip
from collapse_sim.policies import fresh_real  # noqa: F401  isort: skip
from collapse_sim.policies import verified  # noqa: F401  isort: skip
from collapse_sim.policies import curated  # noqa: F401  isort: skip
from collapse_sim.policies import corrected  # noqa: F401  isort: skip
from collapse_sim.policies import active  # noqa: F401  isort: skip

#: every policy kind (``kind`` is required)
PolicySettings = kind_union(KINDS)


def make(settings: PolicySettingsBase) -> Policy:
    return KINDS.make(settings)


__all__ = ["KINDS", "GenerationData", "Offered", "OracleRequest", "Policy", "PolicySettings", "PolicySettingsBase",
           "Selection", "make"]
