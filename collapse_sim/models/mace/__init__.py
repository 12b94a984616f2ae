"""MACE (mace-torch) behind the Model protocol, split by concern:

* ``runtime``  imported first by the others: mace before e3nn, torch state scoped to a call;
* ``graphs``   structures -> mace graphs, collated once and batched by index;
* ``training`` the fit loop, as ``mace_run_train`` trains, with split-batch parallelism;
* ``model``    ``MACEModel``: fit, predict, embed, calculator, save/load, fingerprint.
"""
