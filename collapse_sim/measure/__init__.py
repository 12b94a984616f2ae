"""Measuring each generation against fixed yardsticks.

Modules: ``catalogue`` (every metrics.jsonl column: unit, direction, meaning; the table
of docs/metrics.md is rendered from it), ``probes`` (the fixed probe sets), ``reference`` (the reference
model and the real-data statistics, made once per run), ``yardsticks`` (both, loaded once
per lineage task), ``accuracy`` (errors against oracle labels), ``data`` (diversity and
label tails of a structure set), ``representation`` (a model's embeddings: intrinsic
dimension and alignment with other models), ``row`` (one generation's metrics row).
The metric functions themselves are in ``collapse_sim.metrics``.
"""
