"""Closed-form validation: collapse_sim's own loop (policies, pools, provenance, executor) must
reproduce results that are known exactly. ``collapse-sim validate-theory SCENARIO`` runs a
scenario over many seeds and prints, per policy and generation, the simulated mean ± standard
error next to the closed form.

Indexing. Generation g of the loop is the (g+1)-th fit: n = g + 1. Generation 0 (n = 1) is
the fit on real data; every later fit uses data its predecessor produced.

Linear regression on a fixed design (Gerstgrasser et al. 2024, arXiv 2404.01413; Dohmatob,
Feng & Kempe 2024, arXiv 2402.07712). Scenario: a ``linear`` model (alpha = 0), the
``LinearTruth`` oracle with the same basis (so E = w*·φ exactly), the ``fixed-design`` sampler
(every generation relabels generation 0's real structures X), Gaussian energy noise σ_r on
the oracle and σ_s on the synthetic labels. With T = tr((XᵀX)⁻¹) of the seed's design,
E‖ŵ_n − w*‖² given X is exactly

    replace:    T·(σ_r² + (n−1)·σ_s²)                 (= σ²·n·T when σ_r = σ_s = σ)
    accumulate: T·(σ_r² + σ_s²·Σ_{j=2..n} 1/j²)       (= σ²·T·Σ_{j=1..n} 1/j²)
    corrected:  T·s_n, s_1 = σ_r², s_n = (1−t)²·s_{n−1} + t²σ_r² + (1−t)²σ_s²

(accumulate: ŵ_n − w* = Σ_j Aε_j / j with A = (XᵀX)⁻¹Xᵀ). T depends on the seed's design, so
the closed form shown is the mean over seeds of each seed's exact value.

Self-correction (Gillman et al. 2024, arXiv 2402.07087), the ``corrected`` policy with
``fraction`` 1: every self-label becomes t·(oracle label) + (1 − t)·(model label), t = γ/(1 + γ),
each with its own fresh noise, so ŵ_n − w* = (1 − t)(ŵ_{n−1} − w*) + Aε_n with Var ε_n =
t²σ_r² + (1 − t)²σ_s². The error contracts by (1 − t)² per generation towards the fixed point
T·(t²σ_r² + (1 − t)²σ_s²)/(t(2 − t)): γ = 0 is ``replace`` (no fixed point); with equal noise
on oracle and self-labels the fixed point is lowest at t = 1/2 (γ = 1), and more correction
beyond that adds back the oracle's own noise.

Verification (Feng et al. 2024, arXiv 2406.07515): with ``synthetic.label_error_rate`` p a share
p of the self-labels is negated; a ``verified`` policy that checks every label keeps a right one
with probability ϕ (``keep_passed``) and a wrong one with ψ (``keep_failed``), so a share
q = pψ/(pψ + (1 − p)ϕ) of the kept labels is wrong (``replace``: q = p). After that one round,
E⟨Xŵ, Xw*⟩/‖Xw*‖² = 1 − 2q on the seed's design X: learning holds for p below
p* = 1/(1 + ψ/ϕ) and breaks down (the sign flips) above it. Checked at generation 1 with the
sample standard error (the law gives no variance).

Gaussian refitting (Shumailov et al., Nature 631, 2024), replace policy. Truth N(μ₀, σ₀²) =
the ``gaussian`` system's (mean, std²); fit 1 uses M₁ = ``real_data.n_structures`` real
samples, each later fit M = ``synthetic.n_structures`` samples of its predecessor
(``model-samples``). With c_i = (M_i − 1)/M_i (``mle``) or 1 (``unbiased``):

    E[σ²_n]          = σ₀²·Π_{i≤n} c_i                      (MLE, M_i = M: σ₀²((M−1)/M)^n)
    E[(μ_n − μ₀)²]   = Σ_{j=0..n−1} E[σ²_j] / M_{j+1}        (MLE: σ₀²(1 − ((M−1)/M)^n); unbiased: n·σ₀²/M)
    E[log σ²_n]      = log σ₀² + Σ_{i≤n} [ψ((M_i−1)/2) + log 2 − log(M_i or M_i − 1)]

(σ²_j for j = 0 is σ₀²; the last law drifts down every generation even for the unbiased
estimator, whose mean variance stays σ₀².) Other policies are simulated and shown without a
closed form.

Agreement: |simulated mean − closed form| ≤ max(10 % of |closed form|, 3 standard errors), with
the standard error of the mean over seeds that the law itself predicts (the exact variance of
each seed's quantity, below). The sample standard error is printed too, but it is not used:
σ²_n is heavy-tailed for small M (its relative spread is ((M+1)/(M−1))^{n/2}), and with tens of
seeds the sample spread badly underestimates the true one (e.g. M = 10, n = 10: 3.6 times).

Exact variances. Linear: given X, ŵ_n − w* ~ N(0, s_n (XᵀX)⁻¹) with s_n = σ_r² + σ_s²·Σ_{j=2..n} c_j²
(c_j = 1 replace, 1/j accumulate), so Var‖ŵ_n − w*‖² = 2 s_n² Σ_k λ_k², λ_k the eigenvalues of
(XᵀX)⁻¹. Gaussian: σ²_n = σ₀² Π W_i with independent W_i = χ²_{M_i−1}/(M_i or M_i − 1), which
gives E σ⁴_n and Var log σ²_n = Σ ψ'((M_i−1)/2); E(μ_n − μ₀)⁴ follows from a moment recursion
(the sample mean of Gaussian samples is independent of their sample variance).
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from collapse_sim.scenario import Scenario

REL_TOL = 0.10
N_SE = 3.0
LINEAR_ORACLE = "collapse_sim.oracles.linear.LinearTruth"
LINEAR_LAWS = ("replace", "accumulate", "corrected")
GAUSSIAN_QUANTITIES = {"var": "σ²_n", "mean_sq": "(μ_n − μ₀)²", "log_var": "log σ²_n"}


class TheoryError(ValueError):
    """The scenario is not one whose laws are known exactly (one line, naming the field)."""


def agrees(sim_mean: float, sim_se: float, closed: float, rel_tol: float = REL_TOL, n_se: float = N_SE) -> bool:
    """The checker: |sim − closed| ≤ max(rel_tol·|closed|, n_se·SE)."""
    return bool(abs(sim_mean - closed) <= max(rel_tol * abs(closed), n_se * sim_se))


@dataclass
class Comparison:
    """One policy × quantity × generation: per-seed simulated values and per-seed closed forms."""

    policy: str
    quantity: str
    generation: int
    simulated: np.ndarray
    closed: np.ndarray | None  # per-seed expected value; None: no closed form for this policy
    closed_var: np.ndarray | None = None  # per-seed variance the law predicts

    @property
    def n(self) -> int:
        return self.generation + 1

    @property
    def sim_mean(self) -> float:
        return float(np.mean(self.simulated))

    @property
    def sim_se(self) -> float:
        s = self.simulated
        return float(np.std(s, ddof=1) / math.sqrt(len(s))) if len(s) > 1 else float("inf")

    @property
    def closed_mean(self) -> float | None:
        return None if self.closed is None else float(np.mean(self.closed))

    @property
    def predicted_se(self) -> float | None:
        """Standard error of the mean over seeds that the closed form predicts."""
        if self.closed_var is None:
            return None
        return float(math.sqrt(np.sum(self.closed_var)) / len(self.closed_var))

    @property
    def check_se(self) -> float:
        """The standard error the checker uses: predicted if known, else the sample one."""
        return self.predicted_se if self.predicted_se is not None else self.sim_se

    @property
    def z(self) -> float | None:
        if self.closed is None:
            return None
        return (self.sim_mean - self.closed_mean) / self.check_se if self.check_se > 0 else float("inf")

    @property
    def ok(self) -> bool | None:
        return None if self.closed is None else agrees(self.sim_mean, self.check_se, self.closed_mean)


@dataclass
class TheoryReport:
    kind: str  # 'linear' | 'gaussian'
    title: str
    header: list[str]
    comparisons: list[Comparison]
    extra: dict = field(default_factory=dict)

    @property
    def checked(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.closed is not None]

    @property
    def ok(self) -> bool:
        return bool(self.checked) and all(c.ok for c in self.checked)

    def failures(self) -> list[Comparison]:
        return [c for c in self.checked if not c.ok]

    def select(self, policy: str, quantity: str) -> list[Comparison]:
        return sorted((c for c in self.comparisons if c.policy == policy and c.quantity == quantity),
                      key=lambda c: c.generation)

    def table(self) -> str:
        lines = [self.title] + [f"  {h}" for h in self.header] + [""]
        quantities = list(dict.fromkeys(c.quantity for c in self.comparisons))
        policies = list(dict.fromkeys(c.policy for c in self.comparisons))
        for quantity in quantities:
            label = GAUSSIAN_QUANTITIES.get(quantity, quantity)
            lines.append(f"{label}")
            lines.append(f"  {'policy':<11} {'gen':>3} {'n':>3}  {'simulated ± sample s.e.':<23} "
                         f"{'closed form ± s.e.':<23} {'sim/closed':>10} {'z':>6}  agrees")
            for policy in policies:
                for c in self.select(policy, quantity):
                    sim = f"{c.sim_mean:.4g} ± {c.sim_se:.2g}"
                    if c.closed is None:
                        lines.append(f"  {policy:<11} {c.generation:>3} {c.n:>3}  {sim:<23} {'—':<23} "
                                     f"{'':>10} {'':>6}  (no closed form)")
                        continue
                    cf = c.closed_mean
                    closed = f"{cf:.4g} ± {c.check_se:.2g}"
                    ratio = f"{c.sim_mean / cf:.3f}" if cf else "—"
                    lines.append(f"  {policy:<11} {c.generation:>3} {c.n:>3}  {sim:<23} {closed:<23} {ratio:>10} "
                                 f"{c.z:>+6.2f}  {'yes' if c.ok else 'NO'}")
            lines.append("")
        n_checked, n_bad = len(self.checked), len(self.failures())
        verdict = "all agree" if self.ok else f"{n_bad} of {n_checked} comparisons DISAGREE"
        se = ("the standard error the law predicts" if all(c.closed_var is not None for c in self.checked)
              else "the sample standard error (this law predicts no variance)")
        lines.append(f"agreement: |simulated − closed| ≤ max({REL_TOL:.0%} of closed, {N_SE:g} s.e.), s.e. = {se}; "
                     f"z = (simulated − closed)/s.e.: {verdict} ({n_checked} checked)")
        return "\n".join(lines)


# --- which experiment ------------------------------------------------------------------------
def experiment_kind(sc: Scenario) -> str:
    """'linear' or 'gaussian'; TheoryError if the scenario has no exact laws."""
    if sc.sweep:
        raise TheoryError("sweep: validate-theory compares policies over seeds; run one scenario per setting")
    sampler = sc.synthetic.sampler.kind
    if sc.model.kind == "gaussian":
        if sampler != "model-samples":
            raise TheoryError(f"synthetic.sampler: the Gaussian laws need kind model-samples, not {sampler!r}")
        return "gaussian"
    if sc.model.kind != "linear":
        raise TheoryError(f"model.kind: closed forms exist for the linear and gaussian models, not {sc.model.kind!r}")
    if sc.model.alpha != 0:
        raise TheoryError(f"model.alpha: the linear laws are for ordinary least squares (alpha 0), "
                          f"got {sc.model.alpha}")
    if sc.oracle.calculator != LINEAR_ORACLE:
        raise TheoryError(f"oracle.calculator: the linear laws need {LINEAR_ORACLE}, not {sc.oracle.calculator}")
    if sampler != "fixed-design":
        raise TheoryError(f"synthetic.sampler: the linear laws need kind fixed-design, not {sampler!r}")
    from collapse_sim.models.linear import PairBasis
    from collapse_sim.oracles.linear import truth_basis

    try:
        truth = PairBasis(**truth_basis({k: v for k, v in sc.oracle.kwargs.items()})).as_dict()
    except Exception as exc:  # noqa: BLE001 - pydantic or basis errors, as one line
        raise TheoryError(f"oracle.kwargs: {str(exc).splitlines()[0]}") from None
    model = PairBasis.from_settings(sc.model).as_dict()
    if truth != model:
        raise TheoryError(f"oracle.kwargs: the truth's basis {truth} differs from the model's {model}")
    if sc.oracle.energy_noise <= 0:
        raise TheoryError("oracle.energy_noise: the linear laws need label noise (sigma > 0)")
    return "linear"


def with_seeds(sc: Scenario, n: int) -> Scenario:
    """The scenario with seeds 0..n-1."""
    from collapse_sim.scenario import parse_scenario

    return parse_scenario(sc.model_dump(mode="json") | {"seeds": list(range(n))}, f"{sc.name} (--seeds {n})")


def scratch_parent() -> str | None:
    """Where a throw-away run goes: tmpfs (/dev/shm) if there is one, since the loop fsyncs
    every model file; else the system's temporary folder."""
    import os

    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def run_theory(sc: Scenario, root: Path, executor, progress: Callable[[str], None] | None = None) -> TheoryReport:
    """Run ``sc`` through the loop into the run directory ``root`` (created), then compare."""
    from collapse_sim.loop import RunContext, run
    from collapse_sim.store import RunStore

    experiment_kind(sc)
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    store = RunStore(root)
    with store.lock():  # one driver per run directory
        store.write_scenario(sc.resolved_yaml())
        run(RunContext(sc, root, executor), progress=progress or (lambda message: None))
    return analyse(sc, root)


def analyse(sc: Scenario, root: Path, laws: dict[str, str] | None = None, estimator: str | None = None) -> TheoryReport:
    """Compare a finished run with the closed forms. ``laws`` maps a policy label to the law it is
    checked against (default: its own kind); ``estimator`` overrides the Gaussian estimator's law.
    Both overrides exist to show that the checker rejects the wrong law."""
    kind = experiment_kind(sc)
    laws = {p.label: p.kind for p in sc.policies} | (laws or {})
    if kind == "linear":
        return _analyse_linear(sc, Path(root), laws)
    return _analyse_gaussian(sc, Path(root), laws, estimator or sc.model.estimator)


# --- linear regression -----------------------------------------------------------------------
def noise_scale(law: str, n: int, var_real: float, var_synthetic: float, t: float = 0.0) -> float:
    """s_n: ŵ_n − w* ~ N(0, s_n (XᵀX)⁻¹) after n fits (``t``: the corrected policy's t = γ/(1 + γ))."""
    if law == "replace":
        return var_real + (n - 1) * var_synthetic
    if law == "accumulate":
        return var_real + var_synthetic * sum(1.0 / j**2 for j in range(2, n + 1))
    if law == "corrected":
        s = var_real
        for _ in range(n - 1):
            s = (1.0 - t) ** 2 * s + t**2 * var_real + (1.0 - t) ** 2 * var_synthetic
        return s
    raise KeyError(f"no linear law {law!r}")


def corrected_fixed_point(t: float, var_real: float, var_synthetic: float) -> float:
    """lim s_n of the corrected law (infinite for t = 0: replace grows without bound)."""
    if t <= 0:
        return math.inf
    return (t**2 * var_real + (1.0 - t) ** 2 * var_synthetic) / (t * (2.0 - t))


def kept_error_rate(p: float, keep_passed: float = 1.0, keep_failed: float = 1.0) -> float:
    """q: the share of wrong labels among those a verifier keeps, when a share p is wrong and it
    keeps a right one with probability ϕ = ``keep_passed`` and a wrong one with ψ = ``keep_failed``
    (no verifier: ϕ = ψ = 1, q = p). Learning breaks down when q > 1/2, i.e. p > p* = 1/(1 + ψ/ϕ)."""
    kept_wrong, kept_right = p * keep_failed, (1.0 - p) * keep_passed
    return kept_wrong / (kept_wrong + kept_right) if kept_wrong + kept_right > 0 else math.nan


def verification_threshold(keep_passed: float, keep_failed: float) -> float:
    """p* = 1/(1 + ψ/ϕ) (Feng et al. 2024): the label-error rate above which learning breaks down."""
    return 1.0 / (1.0 + keep_failed / keep_passed) if keep_passed > 0 else 0.0


def linear_law(law: str, n: int, trace: float, var_real: float, var_synthetic: float, t: float = 0.0) -> float:
    """E‖ŵ_n − w*‖² given the design (n = generation + 1), trace = tr((XᵀX)⁻¹)."""
    return noise_scale(law, n, var_real, var_synthetic, t) * trace


def design_spectrum(X: np.ndarray) -> np.ndarray:
    """Eigenvalues of (XᵀX)⁻¹ (their sum is tr((XᵀX)⁻¹))."""
    s = np.linalg.svd(X, compute_uv=False)
    if s.min() <= s.max() * 1e-12:
        raise TheoryError("the generation-0 design is rank deficient: tr((XᵀX)⁻¹) is infinite")
    return 1.0 / s**2


def _analyse_linear(sc: Scenario, root: Path, laws: dict[str, str]) -> TheoryReport:
    from collapse_sim.data.io import read_structures
    from collapse_sim.lineage import lineage_name
    from collapse_sim.models.linear import LinearModel, PairBasis
    from collapse_sim.store import RunStore

    store = RunStore(root)
    basis = PairBasis.from_settings(sc.model)
    w_star = np.asarray(sc.oracle.kwargs["weights"], dtype=float)
    var_r, var_s = sc.oracle.energy_noise**2, sc.synthetic.energy_noise**2
    designs = {}  # seed -> its fixed design X, generation 0's real structures
    for seed in sc.seeds:
        real0 = [a for a in read_structures(store.generation(lineage_name(sc.policies[0].label, seed), 0).train)
                 if a.info.get("origin") == "real" and int(a.info.get("generation", -1)) == 0]
        designs[seed] = basis.design(real0)
    spectra = {seed: design_spectrum(X) for seed, X in designs.items()}
    traces = {seed: float(lam.sum()) for seed, lam in spectra.items()}
    comparisons = []
    rate = sc.synthetic.label_error_rate
    if rate > 0:  # wrong self-labels: the verification law replaces the noise laws
        return _analyse_verification(sc, store, designs, w_star, rate, traces)
    for policy in sc.policies:
        law = laws.get(policy.label) if laws.get(policy.label) in LINEAR_LAWS else None
        t = getattr(policy, "t", 0.0)
        if law == "corrected" and getattr(policy, "fraction", 1.0) != 1.0:
            law = None  # the law assumes every self-label corrected
        for g in range(sc.generations + 1):
            errors, closed, variance = [], [], []
            for seed in sc.seeds:
                path = store.model_path(lineage_name(policy.label, seed), g)
                w = LinearModel.load(path, sc.model).weights
                errors.append(float(np.sum((w - w_star) ** 2)))
                if law:
                    scale = noise_scale(law, g + 1, var_r, var_s, t)
                    closed.append(scale * traces[seed])
                    variance.append(2.0 * scale**2 * float(np.sum(spectra[seed] ** 2)))
            comparisons.append(Comparison(policy.label, "‖ŵ_n − w*‖²", g, np.array(errors),
                                          np.array(closed) if law else None, np.array(variance) if law else None))
    t = np.array(list(traces.values()))
    header = [
        f"linear regression on a fixed design through the collapse_sim loop: d = {basis.n_features} features "
        f"(atom count + {basis.n_basis} radial), T = {sc.real_data.n_structures} structures, "
        f"σ_real = {sc.oracle.energy_noise:g} eV, σ_synthetic = {sc.synthetic.energy_noise:g} eV, "
        f"{len(sc.seeds)} seeds",
        f"per-seed tr((XᵀX)⁻¹): mean {t.mean():.4g}, min {t.min():.4g}, max {t.max():.4g}",
        "closed forms (n = generation + 1 fits; mean over seeds of each seed's exact value):",
        "  replace:    tr·(σ_real² + (n−1)·σ_synthetic²)          [= σ²·n·tr]",
        "  accumulate: tr·(σ_real² + σ_synthetic²·Σ_{j=2..n} 1/j²)  [= σ²·tr·Σ_{j≤n} 1/j²]",
    ]
    for policy in sc.policies:
        if policy.kind == "corrected" and getattr(policy, "fraction", 1.0) == 1.0:
            fixed = corrected_fixed_point(policy.t, var_r, var_s) * float(t.mean())
            header.append(f"  corrected ({policy.label}, γ = {policy.gamma:g}, t = {policy.t:.3g}): tr·s_n, "
                          f"s_n = (1−t)²s_(n−1) + t²σ_real² + (1−t)²σ_synthetic²; fixed point {fixed:.4g}")
    overrides = {p.label: laws[p.label] for p in sc.policies if laws.get(p.label) != p.kind}
    if overrides:
        header.append(f"laws overridden (policy → law checked): {overrides}")
    return TheoryReport("linear", f"validate-theory: {sc.name}", header, comparisons, {"traces": traces})


def _verification_q(policy, rate: float) -> float | None:
    """The kept wrong-label share of ``policy`` at label-error rate ``rate``; None without a closed form."""
    if policy.kind == "replace":
        return rate
    if policy.kind == "verified" and policy.check_fraction == 1.0 and policy.unchecked == "drop" \
            and not policy.add_oracle_labelled:
        return kept_error_rate(rate, policy.keep_passed, policy.keep_failed)
    return None


def _analyse_verification(sc: Scenario, store, designs: dict[int, np.ndarray], w_star: np.ndarray, rate: float,
                          traces) -> TheoryReport:
    """The fit's energies on the seed's design projected on the truth's, ⟨Xŵ_n, Xw*⟩/‖Xw*‖², per
    generation: 1 in expectation for the real fit, and after one round of self-labels of which a
    share q of the kept ones is negated, 1 − 2q (OLS is linear in the labels, and which rows are
    kept does not depend on which labels are wrong beyond q). On the fitted energies rather than
    the weights: a negated label moves the weights along the design's weak directions, which the
    energies on the design do not feel."""
    from collapse_sim.lineage import lineage_name
    from collapse_sim.models.linear import LinearModel

    quantity = "⟨Xŵ_n, Xw*⟩/‖Xw*‖²"
    truth = {seed: (X, X @ w_star) for seed, X in designs.items()}
    comparisons = []
    for policy in sc.policies:
        q = _verification_q(policy, rate)
        for g in range(sc.generations + 1):
            values = []
            for seed in sc.seeds:
                path = store.model_path(lineage_name(policy.label, seed), g)
                if path.exists():  # a lineage left with nothing to train on ends early
                    X, target = truth[seed]
                    fitted = X @ LinearModel.load(path, sc.model).weights
                    values.append(float(fitted @ target) / float(target @ target))
            closed = None
            if q is not None and g <= 1:
                closed = np.full(len(values), 1.0 if g == 0 else 1.0 - 2.0 * q)
            comparisons.append(Comparison(policy.label, quantity, g, np.array(values), closed))
    header = [
        f"verification on a fixed design through the collapse_sim loop: a share p = {rate:g} of the self-labels is "
        f"negated (synthetic.label_error_rate); {len(sc.seeds)} seeds",
        "closed form (Feng et al. 2024): after one round of self-labels, E⟨Xŵ, Xw*⟩/‖Xw*‖² = 1 − 2q, "
        "q = pψ/(pψ + (1−p)ϕ) the wrong share among the kept labels; learning breaks down (the sign flips) "
        "above p* = 1/(1 + ψ/ϕ)",
    ]
    for policy in sc.policies:
        q = _verification_q(policy, rate)
        if q is None:
            continue
        phi, psi = (1.0, 1.0) if policy.kind == "replace" else (policy.keep_passed, policy.keep_failed)
        p_star = verification_threshold(phi, psi)
        header.append(f"  {policy.label}: ϕ = {phi:g}, ψ = {psi:g}: q = {q:.3g}, 1 − 2q = {1 - 2 * q:+.3g}, "
                      f"p* = {p_star:.3g} ({'learning holds' if rate < p_star else 'learning breaks down'})")
    return TheoryReport("linear", f"validate-theory: {sc.name}", header, comparisons, {"traces": traces})


# --- Gaussian refitting ----------------------------------------------------------------------
def gaussian_laws(estimator: str, n: int, var0: float, m_real: int, m_synthetic: int) -> dict[str, tuple[float, float]]:
    """(expected value, variance) of σ²_n, (μ_n − μ₀)² and log σ²_n after n fits, replace policy."""
    from scipy.special import digamma, polygamma

    sizes = [m_real] + [m_synthetic] * (n - 1)  # fit i uses sizes[i - 1] samples
    # V_i = V_{i-1}·W_i, W = χ²_k / D with k = M − 1 and D = M (mle) or M − 1 (unbiased);
    # S_i = S_{i-1} + sqrt(V_{i-1}/M)·Z, Z ~ N(0, 1) independent of W_i
    a, b = var0, var0**2  # E V, E V²
    m2, c, e = 0.0, 0.0, 0.0  # E S², E S²V, E S⁴   (S = μ − μ₀)
    log_mean, log_var = math.log(var0), 0.0
    for m in sizes:
        k, D = m - 1, (m if estimator == "mle" else m - 1)
        w1, w2 = k / D, k * (k + 2) / D**2
        m2, e, c = m2 + a / m, e + 6 * c / m + 3 * b / m**2, w1 * (c + b / m)
        a, b = a * w1, b * w2
        log_mean += float(digamma(k / 2)) + math.log(2) - math.log(D)
        log_var += float(polygamma(1, k / 2))
    return {"var": (a, b - a**2), "mean_sq": (m2, e - m2**2), "log_var": (log_mean, log_var)}


def _analyse_gaussian(sc: Scenario, root: Path, laws: dict[str, str], estimator: str) -> TheoryReport:
    from collapse_sim.lineage import lineage_name
    from collapse_sim.store import RunStore

    rows = {}
    for line in RunStore(root).metrics_path.read_text().splitlines():
        row = json.loads(line)
        rows[row["lineage"], row["generation"]] = row
    mu0, var0 = sc.system.mean, sc.system.std**2
    m_real, m_syn = sc.real_data.n_structures, sc.synthetic.n_structures
    comparisons = []
    for policy in sc.policies:
        checked = laws.get(policy.label) == "replace"
        for g in range(sc.generations + 1):
            picked = [rows[lineage_name(policy.label, seed), g] for seed in sc.seeds]
            values = {"var": [r["gauss_var"] for r in picked],
                      "mean_sq": [(r["gauss_mean"] - mu0) ** 2 for r in picked],
                      "log_var": [math.log(r["gauss_var"]) for r in picked]}
            expected = gaussian_laws(estimator, g + 1, var0, m_real, m_syn) if checked else {}
            for quantity, simulated in values.items():
                closed = variance = None
                if checked:
                    closed = np.full(len(simulated), expected[quantity][0])
                    variance = np.full(len(simulated), expected[quantity][1])
                comparisons.append(Comparison(policy.label, quantity, g, np.array(simulated), closed, variance))
    header = [
        f"Gaussian refitting through the collapse_sim loop: truth N(μ₀ = {mu0:g}, σ₀² = {var0:g}), "
        f"estimator {sc.model.estimator}, M = {m_syn} samples per fit (real fit: {m_real}), {len(sc.seeds)} seeds",
        "closed forms for replace (n = generation + 1 fits; fit 1 = generation 0, on real samples):",
        "  mle:      E σ²_n = σ₀²((M−1)/M)^n,  E(μ_n − μ₀)² = σ₀²(1 − ((M−1)/M)^n)",
        "  unbiased: E σ²_n = σ₀²,             E(μ_n − μ₀)² = n·σ₀²/M",
        "  E log σ²_n = log σ₀² + n·[ψ((M−1)/2) + log 2 − log(M or M−1)]",
    ]
    if estimator != sc.model.estimator:
        header.append(f"law overridden: checked against the {estimator} estimator's laws")
    overrides = {p.label: laws[p.label] for p in sc.policies if laws.get(p.label) != p.kind}
    if overrides:
        header.append(f"laws overridden (policy → law checked): {overrides}")
    return TheoryReport("gaussian", f"validate-theory: {sc.name}", header, comparisons)
