"""What a model's embeddings of the probe sets say: their intrinsic dimension, and how
closely they align with other models' embeddings of the same structures."""
from __future__ import annotations

import numpy as np

from collapse_sim.measure._guard import guarded


def model_metrics(embeddings: dict[str, np.ndarray], targets: dict[str, dict[str, np.ndarray]], k: int,
                  warnings: list[str]) -> dict:
    """Embedding intrinsic dimension per probe set, and alignment with each available target
    model (``targets``: target name -> probe set -> that model's embeddings)."""
    from collapse_sim.metrics import alignment_metrics, id_twonn

    row = {}
    for probe, X in embeddings.items():
        row |= guarded(f"id_twonn_model_{probe}", lambda: {f"id_twonn_model_{probe}": id_twonn(X)}, warnings)
        for target, by_probe in targets.items():
            m = guarded(f"alignment_{target}_{probe}", lambda: alignment_metrics(X, by_probe[probe], k=k), warnings)
            if m:
                row |= {f"cknna_{target}_{probe}": m["cknna"], f"mknn_{target}_{probe}": m["mknn"],
                        f"dcor_{target}_{probe}": m["dcor"], f"ii_model_to_{target}_{probe}": m["ii_x_to_y"],
                        f"ii_{target}_to_model_{probe}": m["ii_y_to_x"]}
    return row
