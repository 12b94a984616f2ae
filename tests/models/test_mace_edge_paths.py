"""collapse_sim.models.mace.edge_paths: MACE's message product and radial MLP with fewer ops equal
e3nn's in value, gradient and second derivative, and leave the model unchanged."""
from __future__ import annotations

import contextlib
import pickle

import numpy as np
import pytest
import torch

from collapse_sim.models.mace.preamble import default_dtype  # isort: skip  (mace before e3nn)
from e3nn import nn as e3nn_nn
from e3nn import o3
from mace.modules.irreps_tools import tp_out_irreps_with_instructions
from test_mace_model import TINY, _dataset

from collapse_sim.models.mace import MACESettings
from collapse_sim.models.mace.edge_paths import Components, RadialMLP, UVUProduct, fast_paths, use_fast_paths
from collapse_sim.models.mace.model import MACEModel


def _conv_tp(node: str, max_ell: int, target: str) -> o3.TensorProduct:
    """A product built as mace's interaction blocks build ``conv_tp``."""
    sh = o3.Irreps.spherical_harmonics(max_ell)
    mid, instructions = tp_out_irreps_with_instructions(o3.Irreps(node), sh, o3.Irreps(target))
    return o3.TensorProduct(node, sh, mid, instructions=instructions, shared_weights=False, internal_weights=False)


@pytest.mark.parametrize("node,max_ell,target", [
    ("16x0e", 1, "16x0e+16x1o"),                      # first layer: paths l1 = 0 only
    ("16x0e+16x1o", 1, "16x0e+16x1o"),                # the quickstart's second layer: all three one-hot kinds
    ("8x0e+8x1o+8x2e", 2, "8x0e+8x1o+8x1e+8x2e"),     # general w3j paths (1o x 2e -> 1o, 1o x 1o -> 1e, ...)
])
def test_value_gradient_and_second_derivative_equal_e3nn(node, max_ell, target):
    with default_dtype(torch.float64):
        tp = _conv_tp(node, max_ell, target)
        fast = UVUProduct(tp)
        assert any(p[3] == "w3j" for p in fast.paths) == (max_ell == 2)
        g = torch.Generator().manual_seed(0)
        n = 57
        x1, x2, w = (torch.randn(n, d, generator=g, requires_grad=True)
                     for d in (tp.irreps_in1.dim, tp.irreps_in2.dim, tp.weight_numel))
        probe = torch.randn(n, tp.irreps_out.dim, generator=g)
        results = []
        for f in (tp, lambda x1, x2, w: fast.out.to_e3nn(fast.forward(fast.in1.to_components(x1), x2, w))):
            y = f(x1, x2, w)
            first = torch.autograd.grad((y * probe).sum(), [x1, x2, w], create_graph=True)
            second = torch.autograd.grad(sum((t ** 2).sum() for t in first), [x1, x2, w])
            results.append([y, *first, *second])
        for ours, ref in zip(results[1], results[0]):
            torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)


def test_components_layout_round_trips_and_splits_by_component():
    irreps = o3.Irreps("2x0e+3x1o+1x2e+2x2e")
    layout = Components(irreps)
    x = torch.arange(2 * irreps.dim, dtype=torch.float64).reshape(2, -1)
    c = layout.to_components(x)
    torch.testing.assert_close(layout.to_e3nn(c), x, rtol=0, atol=0)
    blocks = layout.split(c)
    assert [len(b) for b in blocks] == [1, 3, 5, 5]
    # component k of the 3x1o block holds e3nn's columns 2 + 3u + k, u = 0..2
    for k in range(3):
        torch.testing.assert_close(blocks[1][k], x[:, [2 + 3 * u + k for u in range(3)]], rtol=0, atol=0)
    assert Components("4x0e+1x1o").trivial and not layout.trivial


@pytest.mark.parametrize("hs,act", [([8, 16, 16, 16, 24], torch.nn.functional.silu),  # MACE's radial MLP
                                     ([8, 16, 24], torch.tanh), ([8, 24], None)])
def test_radial_mlp_value_gradient_and_second_derivative_equal_e3nn(hs, act):
    with default_dtype(torch.float64):
        torch.manual_seed(0)
        net = e3nn_nn.FullyConnectedNet(hs, act)
        fast = RadialMLP(net)
        x = torch.randn(41, hs[0], requires_grad=True)
        params = list(net.parameters())
        probe = torch.randn(41, hs[-1])
        results = []
        for f in (net, fast.forward):
            y = f(x)
            (gx,) = torch.autograd.grad((y * probe).sum(), [x], create_graph=True)  # forces: d/d(input)
            second = torch.autograd.grad((gx ** 2).sum(), params)  # the force loss's parameter gradient
            results.append([y, gx, *second])
        for ours, ref in zip(results[1], results[0]):
            torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)


def test_modules_it_does_not_handle_are_left_to_e3nn():
    sh = o3.Irreps.spherical_harmonics(1)
    shared = o3.FullyConnectedTensorProduct("4x0e+4x1o", sh, "4x0e+4x1o")  # uvw, internal weights
    assert not UVUProduct.supports(shared)
    with pytest.raises(ValueError, match="not a uvu product"):
        UVUProduct(shared)
    with default_dtype(torch.float64):
        tp = _conv_tp("4x0e+4x1o", 1, "4x0e+4x1o")
    assert UVUProduct.supports(tp)
    assert not RadialMLP.supports(torch.nn.Linear(3, 3))


@pytest.fixture(scope="module")
def model():
    return MACEModel(MACESettings(**TINY, epochs=1), threads=1).fit(_dataset(6, 0), seed=0)


def test_fast_paths_give_the_same_forces_and_leave_the_model_as_it_was(model):
    structures = _dataset(3, 500)
    before = pickle.dumps(model.model)
    ref = model.predict(structures)
    with fast_paths(model.model) as n:
        # each block: conv_tp, conv_tp_weights, linear (its input has 1o); linear_up where its output has 1o
        assert n == 3 + 4 == 7
        assert all("forward" in vars(getattr(i, m)) for i in model.model.interactions
                   for m in ("conv_tp", "conv_tp_weights", "linear"))
        assert ["forward" in vars(i.linear_up) for i in model.model.interactions] == [False, True]
        ours = model.predict(structures)
    assert all("forward" not in vars(getattr(i, m)) for i in model.model.interactions
               for m in ("conv_tp", "conv_tp_weights", "linear", "linear_up"))
    assert pickle.dumps(model.model) == before  # what save() writes is mace's own module
    for a, b in zip(ours, ref):
        assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), rel=1e-6)
        np.testing.assert_allclose(a.get_forces(), b.get_forces(), atol=2e-5 * np.abs(b.get_forces()).max())
    with fast_paths(model.model):  # nested use does not patch twice, and the outer block restores
        assert use_fast_paths(model.model) == []
    assert all("forward" not in vars(i.conv_tp) for i in model.model.interactions)


def test_whole_model_energy_forces_and_force_loss_gradient_equal_e3nn_in_float64():
    """The layout changes cross module boundaries (``linear_up`` -> ``conv_tp`` -> ``linear``): the
    whole network with and without the fast paths, as training evaluates it, to float64 rounding."""
    from collapse_sim.models.mace.graphs import Packed, to_graphs

    model = MACEModel(MACESettings(**TINY, epochs=1, dtype="float64"), threads=1).fit(_dataset(6, 0), seed=0)
    net = model.model
    with default_dtype(torch.float64):
        graphs = to_graphs(_dataset(4, 900), model.z_table, model.r_max, ["Default"], labels=True)
        batch = Packed(graphs).batch(range(4))
        params = list(net.parameters())
        results = []
        for fast in (False, True):
            with fast_paths(net) if fast else contextlib.nullcontext():
                out = net(batch.to_dict(), training=True, compute_force=True)
                loss = ((out["energy"] - batch["energy"]) ** 2).sum() + ((out["forces"] - batch["forces"]) ** 2).sum()
                results.append([out["energy"], out["forces"], *torch.autograd.grad(loss, params)])
    for ours, ref in zip(results[1], results[0]):
        torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)


def test_a_block_whose_modules_do_not_chain_keeps_e3nns_product(model):
    """The layout is agreed between linear_up -> conv_tp -> linear only where their irreps chain."""
    import copy

    net = copy.deepcopy(model.model)
    net.interactions[1].linear_up.irreps_out = o3.Irreps("3x0e")  # as if another module fed conv_tp
    patched = use_fast_paths(net)
    assert net.interactions[1].conv_tp not in patched and net.interactions[1].linear not in patched
    assert net.interactions[1].conv_tp_weights in patched and net.interactions[0].conv_tp in patched
