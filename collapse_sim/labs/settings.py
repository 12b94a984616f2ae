"""What a scenario declares about labs and their commons."""
from __future__ import annotations

from pydantic import Field

from collapse_sim.models import ModelSettings
from collapse_sim.oracles import OracleSettings
from collapse_sim.policies import PolicySettings
from collapse_sim.settings_base import Strict
from collapse_sim.systems import SystemSettings


class LabSettings(Strict):
    """One lab: a name, and what differs from the scenario's defaults (model, real data source,
    policy). Labs with the same ``system``, ``oracle`` and ``real_data`` share a data source (the
    same real structures and labels for a seed), the analogue of groups training on one public
    dataset; a lab's own ``system`` (another molecule pool) gives it other structures."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.+=-]+$", description="the lab's name (lineage names start with it)")
    model: ModelSettings | None = Field(None, description="the lab's model; default: the scenario's `model`")
    oracle: OracleSettings | None = Field(None, description="the lab's real-data oracle (its 'functional'); "
                                                           "default: the scenario's `oracle`")
    system: SystemSettings | None = Field(None, description="the lab's structures (e.g. its own SMILES pool); default: "
                                                           "the scenario's. Must hold the same elements as the "
                                                           "scenario's system (the shared probes and descriptors)")
    real_data: dict | None = Field(None, description="the lab's real-data set (as `real_data`); "
                                                    "default: the scenario's")
    policy: PolicySettings | None = Field(None, description="the lab's data policy; "
                                                           "default: the scenario's only policy")
    commons_fraction: float | None = Field(None, ge=0, le=1, description="share of the lab's synthetic draw taken "
                                           "from the other labs' publications; default: `commons.fraction`")
    architecture: str | None = Field(None, description="label of the model family in tables and the tree; "
                                                      "default: derived from the model settings")
    data_source: str | None = Field(None, description="label of the real-data source; default: derived from the oracle")


class CommonsSettings(Strict):
    """The shared pool of model-generated structures."""

    fraction: float = Field(0.5, ge=0, le=1, description="default share of each lab's synthetic draw that comes "
                                                         "from the other labs' publications of the previous generation")
    k: int = Field(25, ge=1, description="neighbours for the lab x lab CKNNA of the ecosystem metrics "
                                        "(the paper's 25); the probe sets need at least 4 k structures "
                                        "(with k close to the number of probes CKNNA is not bounded by 1 "
                                        "and does not compare)")
    control: bool = Field(True, description="also run the same labs with the commons off (each lab trains on its "
                                            "own publications only), sharing generation 0 with the commons-on labs")
