"""The commons: what labs publish, and what a lab draws from it.

A publication is the pool a lab's generation-g model sampled and labelled itself (provenance:
lab, lineage, generation, the model's hash as producer). Generation g+1 of a lab is offered its
own publication with ``round(commons_fraction × n)`` of it replaced by structures drawn at random
from the other labs' publications of generation g, so every lab trains on as many synthetic
structures with the commons on as off: the conditions differ in whose samples they are, not how many.
"""
from __future__ import annotations

from collapse_sim.data.pools import Pool
from collapse_sim.runtime.rng import stream


def publish(store, role, generation: int, pool: Pool, md_failures: int, seconds: dict) -> None:
    """Record ``pool`` as the lab's publication of ``generation`` (and how it was made)."""
    producers = sorted({a.info["producer"] for a in pool.structures})
    store.publish(role.ecosystem, generation, role.lab, list(pool.structures),
                  dict(n=len(pool), md_failures=md_failures, producer=producers, **seconds))


def draw(store, role, seed: int, generation: int) -> tuple[Pool, int, dict]:
    """The synthetic pool offered to ``generation`` of a lab (see the module docstring), the failed
    MD replicas of its own publication and the stage times that publication took."""
    record = store.publication(role.ecosystem, generation - 1, role.lab)
    own = store.read_publication(role.ecosystem, generation - 1, role.lab)
    structures = own
    wanted = round(role.commons_fraction * len(own))
    if wanted:
        others = [atoms for peer in role.peers if peer != role.lab
                  for atoms in store.read_publication(role.ecosystem, generation - 1, peer)]
        rng = stream(seed, role.lab, "commons", generation)
        n_take = min(wanted, len(others))
        keep = sorted(rng.choice(len(own), size=len(own) - n_take, replace=False).tolist())
        take = sorted(rng.choice(len(others), size=n_take, replace=False).tolist())
        structures = [own[i] for i in keep] + [others[i] for i in take]
    seconds = {k: record[k] for k in ("sample_seconds", "label_seconds")}
    return Pool("synthetic", generation - 1, tuple(structures)), record["md_failures"], seconds
