"""MACE's per-edge computations with fewer, cheaper ops: the message tensor product
(``conv_tp``) and the radial MLP that weights it (``conv_tp_weights``).

Why: on CPU these two, evaluated on every edge with their backward (forces) and double backward
(force loss), are most of a training step, and their cost is memory traffic over (edges x
channels) tensors: every op is a pass. Same functions, fewer passes:

* ``conv_tp`` is an e3nn ``TensorProduct`` in ``uvu`` mode with per-edge weights. e3nn's
  generated code forms outer products (``zui,zvj->zuvij``) and small batched matmuls; each of
  MACE's paths is a Clebsch-Gordan contraction with a one-hot ``w3j`` (``l1 = 0``, ``l2 = 0`` or
  ``l_out = 0``: a scaled copy or a channelwise dot product), i.e. a broadcast product.
* ``conv_tp_weights`` is an e3nn ``FullyConnectedNet``; each hidden layer multiplies its
  activations by two constants (the activation's second-moment normalisation and
  ``sqrt(var_out)``, here 1.0): two passes forward, more in each backward. The constants move
  into the next layer's weight matrix (a few dozen numbers), which is the same function.

:func:`fast_paths` makes a model use them for a ``with`` block (training), :func:`use_fast_paths`
for good on a private copy (the MD engine). Only instance ``forward`` attributes change: the
state dict, parameters and e3nn code do not, so what is saved is ``mace_run_train``'s module.
Values, gradients and second derivatives agree with e3nn to float rounding (tests).
"""
from __future__ import annotations

import contextlib
from math import sqrt
from typing import Iterator

import torch
from e3nn import o3


class UVUProduct:
    """``tp(x1, x2, w)`` of an e3nn ``TensorProduct`` whose instructions are all ``uvu`` with
    per-sample weights (``shared_weights=False``) and multiplicity-1 second operand (spherical
    harmonics), as MACE's ``conv_tp``. :meth:`supports` says whether a product qualifies."""

    def __init__(self, tp: o3.TensorProduct):
        if not self.supports(tp):
            raise ValueError(f"not a uvu product with per-sample weights: {tp}")
        self.sizes1 = [mul_ir.dim for mul_ir in tp.irreps_in1]
        self.dims1 = [mul_ir.ir.dim for mul_ir in tp.irreps_in1]
        self.sizes2 = [mul_ir.dim for mul_ir in tp.irreps_in2]
        self.out = [(mul_ir.mul, mul_ir.ir.dim) for mul_ir in tp.irreps_out]
        # each path's weights: one per channel of its x1 irrep (path_shape (mul, 1)), in order
        self.weight_sizes = [tp.irreps_in1[ins.i_in1].mul for ins in tp.instructions]
        self.paths = []
        for ins in tp.instructions:
            ir1, ir2, ir3 = (tp.irreps_in1[ins.i_in1].ir, tp.irreps_in2[ins.i_in2].ir, tp.irreps_out[ins.i_out].ir)
            kind = "x2" if ir1.l == 0 else "x1" if ir2.l == 0 else "dot" if ir3.l == 0 else "w3j"
            # e3nn's specialised code divides by sqrt(dim) where its w3j is delta/sqrt(dim)
            scale = ins.path_weight / sqrt(ir3.dim if kind in ("x1", "x2") else ir1.dim)
            w3j = (ins.path_weight * o3.wigner_3j(ir1.l, ir2.l, ir3.l)) if kind == "w3j" else None
            self.paths.append((ins.i_in1, ins.i_in2, ins.i_out, kind, scale, w3j))

    @staticmethod
    def supports(tp) -> bool:
        return (isinstance(tp, o3.TensorProduct) and not tp.shared_weights and not tp.internal_weights
                and all(mul_ir.mul == 1 for mul_ir in tp.irreps_in2)
                and all(ins.connection_mode == "uvu" and ins.has_weight for ins in tp.instructions)
                and sum(tp.irreps_in1[ins.i_in1].mul for ins in tp.instructions) == tp.weight_numel)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        n = x1.shape[0]
        x1s = [x.reshape(n, -1, d) for x, d in zip(torch.split(x1, self.sizes1, dim=1), self.dims1)]
        x2s = torch.split(x2, self.sizes2, dim=1)
        ws = torch.split(weight, self.weight_sizes, dim=1)
        outs: list[list[torch.Tensor]] = [[] for _ in self.out]
        for (i1, i2, i_out, kind, scale, w3j), w in zip(self.paths, ws):
            a, b = x1s[i1], x2s[i2]
            if kind == "x1":  # l2 = 0: x1 scaled by the scalar x2
                y = a * (w * (b * scale)).unsqueeze(-1)
            elif kind == "x2":  # l1 = 0: x2 scaled by each scalar channel of x1
                y = (w * a[:, :, 0] * scale).unsqueeze(-1) * b.unsqueeze(1)
            elif kind == "dot":  # l_out = 0: channelwise dot product
                y = ((a * b.unsqueeze(1)).sum(-1) * (w * scale)).unsqueeze(-1)
            else:
                y = torch.einsum("zui,zj,ijk->zuk", a, b, w3j.to(a)) * w.unsqueeze(-1)
            outs[i_out].append(y.reshape(n, -1))
        parts = []
        for pieces, (mul, dim) in zip(outs, self.out):
            if not pieces:
                parts.append(x1.new_zeros(n, mul * dim))
            else:
                parts.append(pieces[0] if len(pieces) == 1 else torch.stack(pieces).sum(0))
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]


class RadialMLP:
    """``forward`` of an e3nn ``FullyConnectedNet`` whose activations are ``normalize2mom``-scaled
    functions (or none): each hidden layer's output scale is carried into the next matmul."""

    def __init__(self, net):
        if not self.supports(net):
            raise ValueError(f"not a FullyConnectedNet of normalize2mom activations: {net}")
        self.layers = list(net)

    @staticmethod
    def supports(net) -> bool:
        from e3nn.math import normalize2mom
        from e3nn.nn import FullyConnectedNet

        return isinstance(net, FullyConnectedNet) and all(
            layer.act is None or isinstance(layer.act, normalize2mom) for layer in net)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        carry = 1.0  # the scale the previous layer's activations still owe
        for layer in self.layers:
            if layer.act is not None:
                x = layer.act.f(x @ (layer.weight * (carry / sqrt(layer.h_in * layer.var_in))))
                carry = (1.0 if layer.act._is_id else layer.act.cst) * sqrt(layer.var_out)
            else:
                x = x @ (layer.weight * (carry / sqrt(layer.h_in * layer.var_in / layer.var_out)))
                carry = 1.0
        return x if carry == 1.0 else x * carry


def use_fast_paths(model: torch.nn.Module) -> list:
    """Make every interaction's ``conv_tp`` and ``conv_tp_weights`` that :class:`UVUProduct` /
    :class:`RadialMLP` support run through them (an instance ``forward``); returns the modules
    patched. For private copies (the MD engine's); see :func:`fast_paths`."""
    patched = []
    for interaction in getattr(model, "interactions", []):
        for name, kind in (("conv_tp", UVUProduct), ("conv_tp_weights", RadialMLP)):
            module = getattr(interaction, name, None)
            if module is not None and kind.supports(module) and "forward" not in vars(module):
                module.forward = kind(module).forward
                patched.append(module)
    return patched


@contextlib.contextmanager
def fast_paths(model: torch.nn.Module) -> Iterator[int]:
    """:func:`use_fast_paths` for a ``with`` block (yields how many modules); afterwards the
    model is exactly as before, so it pickles as mace's own module."""
    patched = use_fast_paths(model)
    try:
        yield len(patched)
    finally:
        for module in patched:
            del module.forward
