"Property and bad-input tests of steerkit.operators (pure tensor functions: no model needed)."
import math
import pytest
import torch
import fastcore.test as fct
from hypothesis import given, settings, assume, strategies as st
from steerkit.operators import (unit, orthonormal_plane, plane_coords, ss_rotate, sas, aas, actadd, dirabl,
                                OPERATORS, make_operator, norm_ratio, inplane_angle, plot_norm_ratio)

S = settings(max_examples=30, deadline=None, derandomize=True, database=None)
DTYPES = [torch.float32, torch.bfloat16]
U = {torch.float32: 1e-6, torch.bfloat16: 2.**-8}   # relative rounding bound of an output element
angles = st.floats(-720, 720, allow_nan=False)


@st.composite
def cases(draw, dtype=torch.float32):
    "(h, b1, b2): random width, batch, scale 1e-3..1e4, optional massive dimension; orthonormal plane by Gram-Schmidt."
    d = draw(st.one_of(st.integers(2, 12), st.sampled_from([576, 1536])))
    n, seed = draw(st.integers(1, 6)), draw(st.integers(0, 2**31 - 1))
    scale, outlier = 10. ** draw(st.integers(-3, 4)), draw(st.sampled_from([1., 100.]))
    g = torch.Generator().manual_seed(seed)
    b1, b2 = orthonormal_plane(*torch.randn(2, d, generator=g))
    h = torch.randn(n, d, generator=g) * scale
    h[:, draw(st.integers(0, d - 1))] *= outlier
    return h.to(dtype), b1, b2


def max_norm_err(h, h2): return float((norm_ratio(h, h2) - 1).abs().max())
def rel_dist(a, b, h): return float(((a.float() - b.float()).norm(dim=-1) / h.float().norm(dim=-1)).max())
def circ(a, b):
    x = torch.remainder(a - b, 360.)
    return torch.minimum(x, 360. - x)
def identical(a, b): return a.dtype == b.dtype and torch.equal(a, b)


# --- SS ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", DTYPES)
def test_ss_norm_identity_group(dt):
    @S
    @given(cases(dt), angles, angles)
    def check(c, a, b):
        h, b1, b2 = c
        fct.test_eq(max_norm_err(h, ss_rotate(h, b1, b2, a)) <= 1.01 * U[dt] + 1e-6, True)
        fct.test_eq(identical(ss_rotate(h, b1, b2, 0.), h), True)
        fct.test_eq(identical(ss_rotate(h, b1, b2, 360.), h), True)
        k = 4 * U[dt] + 1e-6
        fct.test_eq(rel_dist(ss_rotate(ss_rotate(h, b1, b2, b), b1, b2, a), ss_rotate(h, b1, b2, a + b), h) <= k, True)
        fct.test_eq(rel_dist(ss_rotate(ss_rotate(h, b1, b2, a), b1, b2, -a), h, h) <= k, True)
    check()


@S
@given(cases(), angles)
def test_ss_adds_angle(c, theta):
    h, b1, b2 = c
    c1, c2 = plane_coords(h, b1, b2)
    frac = torch.sqrt(c1**2 + c2**2) / h.norm(dim=-1)
    keep = frac > 0.05
    assume(bool(keep.any()))
    shift = inplane_angle(ss_rotate(h, b1, b2, theta), b1, b2) - inplane_angle(h, b1, b2)
    fct.test_eq(bool((circ(shift, torch.tensor(theta)) <= 1e-2)[keep].all()), True)


def test_ss_known_values():
    e1, e2, _ = torch.eye(3)
    fct.test_close(ss_rotate(torch.tensor([1., 0, 5]), e1, e2, 90), torch.tensor([0., 1, 5]), eps=1e-6)
    fct.test_close(ss_rotate(torch.tensor([0., 1, 5]), e1, e2, 90), torch.tensor([-1., 0, 5]), eps=1e-6)
    fct.test_eq(ss_rotate(torch.randn(2, 3).bfloat16(), e1, e2, 30).dtype, torch.bfloat16)
    fct.test_eq(ss_rotate(torch.tensor([0., 0, 5]), e1, e2, 77), torch.tensor([0., 0, 5]))   # Ph = 0: untouched


@S
@given(st.integers(1, 5), st.integers(1, 4), st.integers(2, 40), st.integers(0, 10**6))
def test_ss_per_row_theta(B, T, d, seed):
    g = torch.Generator().manual_seed(seed)
    b1, b2 = orthonormal_plane(*torch.randn(2, d, generator=g))
    h, theta = torch.randn(B, T, d, generator=g), torch.rand(B, 1, generator=g) * 360
    rows = torch.stack([ss_rotate(h[i], b1, b2, float(theta[i, 0])) for i in range(B)])
    fct.test_close(ss_rotate(h, b1, b2, theta), rows, eps=1e-5)


# --- SAS / AAS -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", DTYPES)
def test_sas_aas_preserve_norm(dt):
    "Proposition 1 of the paper is false as stated: ||h - Ph||^2 + ||Ph||^2 = ||h||^2, so SAS preserves norms."
    @S
    @given(cases(dt), angles)
    def check(c, theta):
        h, b1, b2 = c
        fct.test_eq(max_norm_err(h, sas(h, b1, b2, theta)) <= 1.01 * U[dt] + 1e-6, True)
        fct.test_eq(max_norm_err(h, aas(h, b1, b2, theta)) <= 1.01 * U[dt] + 1e-6, True)
    check()


@S
@given(cases(), angles)
def test_sas_sets_angle_and_is_idempotent(c, theta):
    h, b1, b2 = c
    c1, c2 = plane_coords(h, b1, b2)
    keep = torch.sqrt(c1**2 + c2**2) / h.norm(dim=-1) > 0.05
    assume(bool(keep.any()))
    y = sas(h, b1, b2, theta)
    fct.test_eq(bool((circ(inplane_angle(y, b1, b2), torch.tensor(theta)) <= 1e-2)[keep].all()), True)
    fct.test_eq(rel_dist(sas(y, b1, b2, theta), y, h) <= 1e-5, True)


@S
@given(cases(), st.floats(0, 360), st.floats(0, 360), angles)
def test_sas_collapses_inplane_info(c, alpha, beta, theta):
    h, b1, b2 = c
    assume(float(circ(torch.tensor(alpha), torch.tensor(beta))) > 1)
    c1, c2 = plane_coords(h, b1, b2)
    z, r = h - c1[:, None] * b1 - c2[:, None] * b2, torch.sqrt(c1**2 + c2**2)[:, None]
    assume(bool((r[:, 0] > 0.05 * h.norm(dim=-1)).all()))
    at = lambda deg: z + r * (math.cos(math.radians(deg)) * b1 + math.sin(math.radians(deg)) * b2)
    fct.test_eq(rel_dist(sas(at(alpha), b1, b2, theta), sas(at(beta), b1, b2, theta), h) <= 1e-5, True)
    fct.test_eq(rel_dist(ss_rotate(at(alpha), b1, b2, theta), ss_rotate(at(beta), b1, b2, theta), h) > 1e-3, True)


def test_sas_not_identity_at_zero():
    e1, e2, _ = torch.eye(3)
    h = torch.tensor([[0., 2, 7]])
    fct.test_close(sas(h, e1, e2, 0), torch.tensor([[2., 0, 7]]))
    fct.test_ne(sas(h, e1, e2, 0), h)


@pytest.mark.parametrize("dt", DTYPES)
def test_aas_identity_where_b1_projection_nonpositive(dt):
    @S
    @given(cases(dt), angles)
    def check(c, theta):
        h, b1, b2 = c
        pos = plane_coords(h, b1, b2)[0] > 0
        y = aas(h, b1, b2, theta)
        fct.test_eq(identical(y[~pos], h[~pos]), True)
        fct.test_eq(identical(y[pos], sas(h, b1, b2, theta)[pos]), True)
    check()


# --- ActAdd / DirAbl -----------------------------------------------------------------------------------------------
@S
@given(cases(), st.floats(-10, 10))
def test_actadd_norm_formula(c, a):
    h, b1, _ = c
    r = b1 * h.norm(dim=-1).mean()
    y = actadd(h, r, a)
    fct.test_close(y, h + a * r, eps=1e-5 * float(h.abs().max() + abs(a) * r.abs().max()))
    big = float((h.norm(dim=-1) + abs(a) * r.norm()).max()) ** 2
    fct.test_close(y.norm(dim=-1)**2, h.norm(dim=-1)**2 + 2 * a * (h @ r) + a * a * (r @ r), eps=1e-4 * big)


def test_actadd_changes_norm_and_per_row_strength():
    h, r = torch.tensor([[1., 0], [1., 0]]), torch.tensor([1., 0])
    fct.test_eq(norm_ratio(h, actadd(h, r, torch.tensor([1., 3.]))), torch.tensor([2., 4.]))
    fct.test_ne(norm_ratio(h, actadd(h, r, 1.)), torch.ones(2))


@pytest.mark.parametrize("dt", DTYPES)
def test_dirabl_removes_u_and_is_idempotent(dt):
    @S
    @given(cases(dt), st.floats(0.1, 100))
    def check(c, k):
        h, b1, _ = c
        y = dirabl(h, k * b1)
        hn = h.float().norm(dim=-1)
        fct.test_eq(bool(((y.float() @ b1).abs() <= 2 * U[dt] * hn + 1e-6).all()), True)
        fct.test_eq(rel_dist(dirabl(y, b1), y, h) <= 4 * U[dt] + 1e-6, True)
    check()


# --- interface -----------------------------------------------------------------------------------------------------
def _plane16():
    torch.manual_seed(0)
    return orthonormal_plane(*torch.randn(2, 16))


def test_make_operator_matches_functions():
    b1, b2 = _plane16()
    h = torch.randn(3, 5, 16)
    fct.test_eq(set(OPERATORS), {"ss", "sas", "aas", "actadd", "dirabl", "add", "scale_units"})
    for name, f in (("ss", ss_rotate), ("sas", sas), ("aas", aas)):
        op = make_operator(name, b1=b1, b2=b2, theta=30)
        fct.test_close(op(h), f(h, b1, b2, 30), eps=1e-6)
        fct.test_close(op(h, torch.tensor([10., 20, 30])), f(h, b1, b2, torch.tensor([[10.], [20], [30]])), eps=1e-6)
    fct.test_close(make_operator("actadd", r=2 * b1)(h, 0.5), h + b1, eps=1e-6)
    fct.test_close(make_operator("dirabl", u=5 * b1)(h), dirabl(h, b1), eps=1e-6)
    fct.test_close(make_operator("add", v=2 * b1)(h, -0.5), h - b1, eps=1e-6)
    fct.test_close(make_operator("scale_units", w=b1)(h, 2.0), h * (1 + 2 * b1), eps=1e-6)
    fct.test_eq(make_operator("ss", b1=b1, b2=b2)(h.bfloat16(), 10.).dtype, torch.bfloat16)


def test_make_operator_errors():
    b1, b2 = _plane16()
    h = torch.randn(2, 16)
    fct.test_fail(lambda: make_operator("rotate", b1=b1, b2=b2), contains="ss, sas, aas, actadd, dirabl")
    fct.test_fail(lambda: make_operator("ss", b1=b1), contains="missing: b2")
    fct.test_fail(lambda: make_operator("actadd"), contains="missing: r")
    fct.test_fail(lambda: make_operator("ss", b1=b1, b2=b2, alpha=1.), contains="unexpected")
    fct.test_fail(lambda: make_operator("ss", b1=b1, b2=b2)(h), contains="needs theta")
    fct.test_fail(lambda: make_operator("dirabl", u=b1)(h, 2.), contains="no parameter")
    fct.test_fail(lambda: make_operator("ss", b1=b1, b2=b2, theta=1)(torch.randn(2, 8)), contains="shape (8,)")
    fct.test_fail(lambda: make_operator("ss", b1=2 * b1, b2=b2), contains="unit vector")


def test_bad_inputs():
    b1, b2 = _plane16()
    h = torch.randn(4, 16)
    for f in (ss_rotate, sas, aas):
        fct.test_fail(lambda: f(torch.randn(4, 8), b1, b2, 10.), contains="shape (8,)")        # mismatched d
        fct.test_fail(lambda: f(h, b1[:8], b2, 10.), contains="b1 must have shape (16,)")
        fct.test_fail(lambda: f(h, 3 * b1, b2, 10.), contains="orthonormal_plane")            # b1 not unit: raise
        fct.test_fail(lambda: f(h, b1, unit(b1 + b2), 10.), contains="orthogonal")             # not orthogonal: raise
        fct.test_fail(lambda: f(h, b1, b2, torch.ones(3)), contains="does not broadcast")      # bad theta shape
    fct.test_fail(lambda: actadd(h, torch.ones(8), 1.), contains="r must have shape (16,)")
    fct.test_fail(lambda: dirabl(h, torch.ones(8)), contains="u must have shape (16,)")
    fct.test_fail(lambda: dirabl(h, torch.zeros(16)), contains="non-zero")
    fct.test_fail(lambda: orthonormal_plane(b1, 2 * b1), contains="parallel")
    # bf16-stored directions are within tolerance and re-orthonormalised in float32
    fct.test_close(ss_rotate(h, b1.bfloat16(), b2.bfloat16(), 40.), ss_rotate(h, b1, b2, 40.), eps=1e-2)


def test_orthonormal_plane_fixes_a_plane():
    torch.manual_seed(1)
    b1, b2 = orthonormal_plane(3 * torch.randn(10), torch.randn(10))
    fct.test_close(torch.stack([b1.norm(), b2.norm(), b1 @ b2]), torch.tensor([1., 1., 0.]), eps=1e-6)


def test_inplane_angle_range():
    e1, e2, _ = torch.eye(3)
    a = inplane_angle(torch.tensor([[1., -1e-9, 0], [-1., -1e-9, 0], [0., -1., 0]]), e1, e2)
    fct.test_eq(bool(((a >= 0) & (a < 360)).all()), True)
    fct.test_close(a[1:], torch.tensor([180., 270.]))


def test_plot_norm_ratio():
    b1, b2 = _plane16()
    h = torch.randn(32, 16)
    fig = plot_norm_ratio(h, b1, b2, thetas=range(0, 360, 90), r=b1, a=2.)
    ax = fig.axes[0]
    fct.test_eq([l.get_label() for l in ax.get_lines()], ["SS", "SAS", "AAS", "ActAdd (a=2, no angle)"])
    fct.test_eq((ax.get_xlabel(), ax.get_ylabel()), ("angle theta (degrees)", "mean ||h'|| / ||h||"))
    for line in ax.get_lines()[:3]: fct.test_close(line.get_ydata(), [1.] * 4, eps=1e-5)
