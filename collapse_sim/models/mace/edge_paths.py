"""MACE's per-edge computations with fewer, cheaper ops: the message tensor product
(``conv_tp``) and the radial MLP that weights it (``conv_tp_weights``).

Why: on CPU these two, evaluated on every edge with their backward (forces) and double backward
(force loss), are most of a training step, and their cost is memory traffic over (edges x
channels) tensors: every op is a pass. Same functions, fewer passes:

* ``conv_tp`` is an e3nn ``TensorProduct`` in ``uvu`` mode with per-edge weights. e3nn's
  generated code forms outer products (``zui,zvj->zuvij``) and small batched matmuls; each of
  MACE's paths is a Clebsch-Gordan contraction with a one-hot ``w3j`` (``l1 = 0``, ``l2 = 0`` or
  ``l_out = 0``: a scaled copy or a channelwise dot product), i.e. elementwise products, here
  on a component-major layout (:class:`Components`) so that each is a contiguous pass.
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
import functools
import operator
from collections.abc import Iterator
from math import sqrt

import torch
from e3nn import o3


class Components:
    """Where the values of an irreps feature sit: e3nn stores a ``mul x ir`` block channel by
    channel (index ``u * dim + i``); here it is stored component by component (``i * mul + u``),
    so that each component of a block is an (edges, mul) slice with contiguous rows.

    Why: the message product multiplies and sums over the ``dim`` components of each channel;
    on e3nn's layout those are broadcasts and reductions over an innermost axis of 3 or 5, which
    torch's CPU kernels run element by element, about ten times slower than the same sums over
    contiguous (edges, mul) slices (docs/performance.md). Nodes are converted (few), edges never
    are."""

    def __init__(self, irreps: o3.Irreps):
        self.blocks = [(mul_ir.mul, mul_ir.ir.dim) for mul_ir in o3.Irreps(irreps)]
        self.trivial = all(mul == 1 or dim == 1 for mul, dim in self.blocks)  # both layouts agree

    def _convert(self, x: torch.Tensor, to_components: bool) -> torch.Tensor:
        if self.trivial:
            return x
        n, parts, lo = x.shape[0], [], 0
        for mul, dim in self.blocks:
            block = x[:, lo:lo + mul * dim]
            shape = (n, mul, dim) if to_components else (n, dim, mul)
            parts.append(block if mul == 1 or dim == 1 else block.reshape(shape).transpose(1, 2).reshape(n, -1))
            lo += mul * dim
        return torch.cat(parts, dim=1)

    def split(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """A component-major ``x`` as each block's components, (n, mul) views (one ``split``: its
        gradient is one concatenation, where each slice's would be a zero-filled copy of ``x``)."""
        parts = iter(torch.split(x, [mul for mul, dim in self.blocks for _ in range(dim)], dim=1))
        return [[next(parts) for _ in range(dim)] for _, dim in self.blocks]

    def to_components(self, x: torch.Tensor) -> torch.Tensor:
        return self._convert(x, True)

    def to_e3nn(self, x: torch.Tensor) -> torch.Tensor:
        return self._convert(x, False)


def _total(xs: list[torch.Tensor]) -> torch.Tensor:
    """x0 + x1 + ...: no ``0 +`` pass as the builtin ``sum`` makes."""
    return functools.reduce(operator.add, xs)


class UVUProduct:
    """``tp(x1, x2, w)`` of an e3nn ``TensorProduct`` whose instructions are all ``uvu`` with
    per-sample weights (``shared_weights=False``) and multiplicity-1 second operand (spherical
    harmonics), as MACE's ``conv_tp``, with ``x1`` and the result in :class:`Components` layout
    (``x2`` has one channel per block: the layouts agree). :meth:`supports` says whether a
    product qualifies."""

    def __init__(self, tp: o3.TensorProduct):
        if not self.supports(tp):
            raise ValueError(f"not a uvu product with per-sample weights: {tp}")
        self.in1, self.in2, self.out = (Components(tp.irreps_in1), Components(tp.irreps_in2),
                                        Components(tp.irreps_out))
        # each path's weights: one per channel of its x1 irrep (path_shape (mul, 1)), in order
        self.weight_sizes = [tp.irreps_in1[ins.i_in1].mul for ins in tp.instructions]
        self.paths = []
        for ins in tp.instructions:
            ir1, ir2, ir3 = (tp.irreps_in1[ins.i_in1].ir, tp.irreps_in2[ins.i_in2].ir, tp.irreps_out[ins.i_out].ir)
            kind = "x2" if ir1.l == 0 else "x1" if ir2.l == 0 else "dot" if ir3.l == 0 else "w3j"
            # e3nn's specialised code divides by sqrt(dim) where its w3j is delta/sqrt(dim)
            scale = ins.path_weight / sqrt(ir3.dim if kind in ("x1", "x2") else ir1.dim)
            terms = None  # kind w3j: for each output component k, its nonzero (i, j, C_ijk)
            if kind == "w3j":
                c = ins.path_weight * o3.wigner_3j(ir1.l, ir2.l, ir3.l, dtype=torch.float64)
                terms = [[(int(i), int(j), float(c[i, j, k])) for i, j in torch.nonzero(c[:, :, k]).tolist()]
                         for k in range(ir3.dim)]
            self.paths.append((ins.i_in1, ins.i_in2, ins.i_out, kind, scale, terms))

    @staticmethod
    def supports(tp) -> bool:
        return (isinstance(tp, o3.TensorProduct) and not tp.shared_weights and not tp.internal_weights
                and all(mul_ir.mul == 1 for mul_ir in tp.irreps_in2)
                and all(ins.connection_mode == "uvu" and ins.has_weight for ins in tp.instructions)
                and sum(tp.irreps_in1[ins.i_in1].mul for ins in tp.instructions) == tp.weight_numel)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        x1s, x2s = self.in1.split(x1), self.in2.split(x2)
        ws = torch.split(weight, self.weight_sizes, dim=1)
        outs: list[list[list[torch.Tensor]]] = [[[] for _ in range(dim)] for _, dim in self.out.blocks]
        for (i1, i2, i_out, kind, scale, terms), w in zip(self.paths, ws):
            a, b, y = x1s[i1], x2s[i2], outs[i_out]  # components: (n, mul) and (n, 1)
            if kind == "x1":  # l2 = 0: x1 scaled by the scalar x2
                s = w * (b[0] * scale)
                for k, a_k in enumerate(a):
                    y[k].append(a_k * s)
            elif kind == "x2":  # l1 = 0: x2 scaled by each scalar channel of x1
                s = w * a[0]
                for k, b_k in enumerate(b):
                    y[k].append(s * (b_k * scale))
            elif kind == "dot":  # l_out = 0: channelwise dot product
                y[0].append(_total([a_k * (b_k * scale) for a_k, b_k in zip(a, b)]) * w)
            else:  # out_k = w sum_ij C_ijk a_i b_j over the nonzero C_ijk
                for k, nonzero in enumerate(terms):
                    if nonzero:
                        y[k].append(_total([a[i] * (b[j] * c) for i, j, c in nonzero]) * w)
        n = x1.shape[0]
        parts = [(_total(pieces) if pieces else x1.new_zeros(n, mul))
                 for (mul, _), block in zip(self.out.blocks, outs) for pieces in block]
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


def _blocks_with_messages() -> tuple[type, ...]:
    """Interaction blocks whose ``linear_up`` output is used only gathered into ``conv_tp`` and
    whose ``conv_tp`` output only summed over edges into ``linear`` (mace's code, read): these
    three can agree on another layout."""
    from mace.modules.blocks import RealAgnosticInteractionBlock, RealAgnosticResidualInteractionBlock

    return RealAgnosticInteractionBlock, RealAgnosticResidualInteractionBlock


def _patch(module: torch.nn.Module, forward, patched: list) -> None:
    module.forward = forward
    patched.append(module)


def use_fast_paths(model: torch.nn.Module) -> list:
    """Make each interaction's ``conv_tp_weights`` that :class:`RadialMLP` supports run through
    it, and in each of mace's message-passing blocks (:func:`_blocks_with_messages`) whose
    ``conv_tp`` :class:`UVUProduct` supports, the message product run on :class:`Components`:
    ``linear_up`` converts its output (nodes), ``conv_tp`` works on it, ``linear`` converts its
    input back (nodes). Instance ``forward`` attributes; returns the modules patched. For
    private copies (the MD engine's); see :func:`fast_paths`."""
    patched = []
    for block in getattr(model, "interactions", []):
        radial = getattr(block, "conv_tp_weights", None)
        if radial is not None and RadialMLP.supports(radial) and "forward" not in vars(radial):
            _patch(radial, RadialMLP(radial).forward, patched)
        if (type(block) not in _blocks_with_messages() or hasattr(block, "conv_fusion")
                or not UVUProduct.supports(block.conv_tp) or "forward" in vars(block.conv_tp)):
            continue
        up, tp, down = block.linear_up, block.conv_tp, block.linear
        if getattr(up, "irreps_out", None) != tp.irreps_in1 or getattr(down, "irreps_in", None) != tp.irreps_out:
            continue  # not the three modules the layouts are agreed between
        product = UVUProduct(tp)
        _patch(tp, product.forward, patched)
        # the class's own forward, bound now: the patched instance attribute shadows it
        up_forward, down_forward = type(up).forward, type(down).forward
        if not product.in1.trivial:
            _patch(up, lambda x, m=up, f=up_forward, c=product.in1: c.to_components(f(m, x)), patched)
        if not product.out.trivial:
            _patch(down, lambda x, m=down, f=down_forward, c=product.out: f(m, c.to_e3nn(x)), patched)
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
