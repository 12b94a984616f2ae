"""Labs and the commons: several lineages that share their model-generated data.

A scenario with ``labs:`` runs an *ecosystem* per seed and commons condition: every lab
(a model, its own real data source, a policy) trains generation 0 on its oracle's real data,
samples with its model, labels the samples itself and publishes them to the commons. A
generation barrier closes each generation: generation g of any lab starts only when every lab
of its ecosystem has published generation g−1, and draws its synthetic data from its own
publication and, for a ``commons_fraction`` share, from the other labs' publications. With
``commons.control`` the same labs also run with the commons switched off (own data only),
sharing generation 0 with the commons-on labs, so the two conditions differ only in what the
labs share.

``settings`` (what a scenario declares), ``lineages`` (labs as lineages: one per lab, commons
condition and seed), ``commons`` (publish and draw). The plan (``collapse_sim.plan``) groups
them into ecosystems, the loop's one scheduler (``collapse_sim.lockstep``) holds the barrier,
and each generation is the step every lineage takes (``collapse_sim.generation.advance``).
"""
