"""Data policies: given the lineage's history and this generation's fresh pools, which
pools does the next model train on? One module per kind. Protocol (``policies.base.Policy``)::

    fresh_real_needed(n_synthetic) -> int                   # new oracle structures wanted
    oracle_requests(synthetic, rng, predict_with) -> list[int]  # synthetic structures the oracle should label
    next_training_set(history, fresh_real, fresh_synthetic, checked, rng) -> list[Pool]

``history`` is a list of ``GenerationData`` (generation 0 first); ``checked`` maps each
requested index of ``fresh_synthetic`` to its oracle-labelled copy; ``predict_with(g, structures)``
lets a policy ask the lineage's model of generation g (``active``'s committee); a filtering
policy reports its kept / oracle-labelled / rejected counts in ``last_counts``.
"""
from collapse_sim.policies.base import KINDS, GenerationData, Policy, PolicySettingsBase
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


__all__ = ["KINDS", "GenerationData", "Policy", "PolicySettings", "PolicySettingsBase", "make"]
