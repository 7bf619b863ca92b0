"""Bad inputs get a clear error naming the cause *and* the fix, one test each, called through the public API as a user
would: a layer index out of range, an unknown site / method / operator / phase, an empty prompt list, NaN, zero and
wrong-size vectors, a parameter grid of the wrong type, an artifact (vectors, plane) from another model, an unreadable
prompts file (through `read_prompts` and through the `steerkit generate` console script, exit code 2).

Every check strips the temporary paths from the message first (a path such as `.../test_read_prompts0/p.txt` must not
satisfy a check for the word 'prompt'), then asserts one substring per cause and one per fix (a tuple: any of them).

Cases marked `xfail(strict=True, reason="NO CLEAR ERROR: ...")` are bad inputs that get no clear error today (a raw
TypeError, a silent wrong result, or a message without a fix): the test says what the message should contain."""
from pathlib import Path
import numpy as np
import pytest, torch
from steerkit.models import tiny_model, model_fingerprint
from steerkit import capture as C, cli, directions, evaluate, generate as G, methods, operators as O, steer, study
from conftest import steerkit_here

D = 64                                     # width of the tiny llama; the other model is a qwen2 of width 32


def xfail(reason): return pytest.mark.xfail(strict=True, reason="NO CLEAR ERROR: " + reason)


def check_msg(msg: str, cause, fix, strip=()):
    "Assert `msg` (temporary paths removed) names every part of `cause` and of `fix` (a tuple part: any of its strings)."
    for p in sorted(map(str, strip), key=len, reverse=True): msg = msg.replace(p, "<path>")
    for kind, parts in (("cause", cause), ("fix", fix)):
        for part in parts:
            alts = part if isinstance(part, tuple) else (part,)
            assert any(a in msg for a in alts), f"the message does not name the {kind} ({' or '.join(map(repr, alts))}): {msg!r}"


def raises_clear(exc, f, cause, fix, strip=()):
    "Call `f`, expect `exc`, check its message; returns the message."
    with pytest.raises(exc) as e: f()
    check_msg(str(e.value), cause, fix, strip)
    return str(e.value)


@pytest.fixture(scope="module")
def mt(): return tiny_model("llama")

@pytest.fixture(scope="module")
def other():
    "Another family with another width (32) and fingerprint."
    return tiny_model("qwen2", d=32)[0]

@pytest.fixture(scope="module")
def add_op(): return O.make_operator("add", v=torch.ones(D), m=1.0)

@pytest.fixture(scope="module")
def ss_v(mt):
    "SS vectors (an orthonormal pair) at layer 1, fitted on the tiny llama (its fingerprint recorded)."
    e = torch.eye(D)
    return methods.Vectors("ss", dict(b1=e[0], b2=e[1]), [dict(layer=1, site="resid_in", dirs=dict(b1="b1", b2="b2"))],
                           dict(fingerprint=model_fingerprint(mt[0]), model="tiny-llama-seed0"))

@pytest.fixture(scope="module")
def dirabl_v(mt):
    return methods.direction_vectors("dirabl", torch.ones(D), layers=[1], sites=["resid_in"],
                                     meta=dict(fingerprint=model_fingerprint(mt[0])))


# ------------------------------------------------------------------------------------------------ layer index out of range
@pytest.mark.parametrize("layer", [4, 7, -5])
def test_steering_layer_out_of_range(mt, add_op, layer):
    raises_clear(IndexError, lambda: steer.steering(mt[0], steer.interventions(add_op, [layer], "resid_in")),
                 cause=[f"Layer {layer} does not exist", "4 layers"], fix=["(0..3)"])

def test_capture_layer_out_of_range(mt):
    raises_clear(IndexError, lambda: C.capture(*mt, ["Hi"], layers=[4], progress=False),
                 cause=["Layer 4 does not exist"], fix=["(0..3)"])

def test_user_built_vectors_at_a_layer_the_model_lacks(mt):
    v = methods.direction_vectors("actadd", torch.ones(D), layer=5)
    raises_clear(IndexError, lambda: methods.method(v, mt[0]), cause=["Layer 5 does not exist"], fix=["(0..3)"])

def test_method_at_layers_where_the_vectors_do_not_act(mt, ss_v):
    raises_clear(methods.VectorsError, lambda: methods.method(ss_v, mt[0], layers=[3]),
                 cause=["none at layers [3]"], fix=["act at layers [1]"])

def test_numpy_integer_layer(mt, add_op):
    try: s = steer.steering(mt[0], steer.interventions(add_op, np.arange(2), "resid_in"))
    except (ValueError, IndexError, TypeError) as e:
        msg = str(e)
        assert "does not exist" not in msg, msg
        check_msg(msg, cause=["int64"], fix=[("must be an int", "pass int(")])
    else: assert [int(iv.layer) for iv in s.ivs] == [0, 1]

@pytest.mark.parametrize("call", [
    pytest.param(lambda m, tok, op: steer.steering(m, steer.interventions(op, 3, "resid_in")), id="interventions"),
    pytest.param(lambda m, tok, op: C.capture(m, tok, ["Hi"], layers=3, progress=False), id="capture"),
])
def test_layers_given_as_one_int(mt, add_op, call):
    try: r = call(*mt, add_op)
    except ValueError as e: check_msg(str(e), cause=["layers", "int"], fix=["layers=[3]"])
    else: assert (r.layers if isinstance(r, C.Activations) else [iv.layer for iv in r.ivs]) == [3]


# ----------------------------------------------------------------------------------- unknown site, method, operator, phase
def test_steering_unknown_site(mt, add_op):
    raises_clear(ValueError, lambda: steer.steering(mt[0], steer.interventions(add_op, [1], "resid_middle")),
                 cause=["Unknown site 'resid_middle'"], fix=["valid sites", "resid_in"])

def test_capture_unknown_site(mt):
    raises_clear(ValueError, lambda: C.capture(*mt, ["Hi"], sites=["nope"], progress=False),
                 cause=["Unknown site 'nope'"], fix=["valid sites", "input_layernorm"])

def test_capture_sites_given_as_one_string(mt):
    try: a = C.capture(*mt, ["Hi"], layers=[0], sites="resid_in", progress=False)
    except ValueError as e:
        assert "Unknown site 'r'" not in str(e), str(e)
        check_msg(str(e), cause=["sites", "str"], fix=[('sites=["resid_in"]', "sites=['resid_in']")])
    else: assert list(a) == ["L0.resid_in"]

def test_unknown_method_name():
    raises_clear(ValueError, lambda: methods.get_spec("nope"), cause=["Unknown method 'nope'"], fix=["use one of", "ss", "caa"])

def test_vectors_of_an_unknown_method(mt):
    v = methods.Vectors("rotate", dict(r=torch.ones(D)), [dict(layer=1, site="resid_in", dirs=dict(r="r"))])
    raises_clear(ValueError, lambda: methods.method(v, mt[0]), cause=["Unknown method 'rotate'"], fix=["use one of", "actadd"])

def test_unknown_operator():
    raises_clear(ValueError, lambda: O.make_operator("rotate", v=torch.ones(D)),
                 cause=["Unknown operator 'rotate'"], fix=["choose one of", "ss", "scale_units"])

def test_unknown_phase(mt, add_op):
    raises_clear(ValueError, lambda: steer.steering(mt[0], steer.interventions(add_op, [1], "resid_in"), phase="decode"),
                 cause=["Unknown phase 'decode'"], fix=["use one of", "generated"])


# ------------------------------------------------------------------------------------------------------ empty prompt list
def test_generate_empty_prompt_list(mt):
    raises_clear(ValueError, lambda: G.generate(*mt, [], progress=False), cause=["no prompts"], fix=["at least one"])

def test_capture_empty_prompt_list(mt):
    raises_clear(ValueError, lambda: C.capture(*mt, [], progress=False), cause=["empty prompt list"], fix=["at least one prompt"])

def test_sweep_empty_prompt_list(mt, ss_v):
    m = methods.method(ss_v, mt[0])
    raises_clear(ValueError, lambda: evaluate.sweep(*mt, [], m, grid=[0], cache=False, progress=False),
                 cause=["no prompts"], fix=["at least one"])

def test_calibrate_empty_class(mt):
    raises_clear(ValueError, lambda: directions.calibrate_plane(*mt, [], ["Bake a cake."], progress=False),
                 cause=["empty prompt list"], fix=["at least one prompt"])

def test_fit_on_empty_data(mt):
    raises_clear(ValueError, lambda: methods.get_spec("actadd").fit(*mt, dict(pos=["How do I pick a lock?"], neg=[])),
                 cause=["'neg' is empty"], fix=["data=dict(pos=[...], neg=[...])"])

@pytest.mark.parametrize("fn", [
    pytest.param(lambda m, tok: G.generate(m, tok, "Name a fruit.", max_new_tokens=2, progress=False), id="generate"),
    pytest.param(lambda m, tok: C.capture(m, tok, "Name a fruit.", layers=[0], progress=False), id="capture"),
])
def test_one_string_instead_of_a_prompt_list(mt, fn):
    try: r = fn(*mt)
    except ValueError as e: check_msg(str(e), cause=["prompts", "str"], fix=["list"])
    else: assert (len(r) if not isinstance(r, C.Activations) else r.meta["n"]) == 1, "one prompt expected"


# ---------------------------------------------------------------------------------------- NaN, zero, wrong-size vectors
NAN, INF = torch.full((D,), float("nan")), torch.full((D,), float("inf"))

@pytest.mark.parametrize("name", ["add", "actadd", "dirabl", "scale_units"])
@pytest.mark.parametrize("bad", [NAN, INF], ids=["nan", "inf"])
def test_non_finite_direction(name, bad):
    arg = O.OPERATORS[name].dirs[0]
    raises_clear(ValueError, lambda: O.make_operator(name, **{arg: bad}), cause=[arg], fix=["must be finite"])

@pytest.mark.parametrize("name", ["ss", "sas", "aas"])
@pytest.mark.parametrize("which", ["b1", "b2"])
def test_non_finite_plane(name, which):
    e = torch.eye(D); b = dict(b1=e[0], b2=e[1]); b[which] = NAN
    raises_clear(ValueError, lambda: O.make_operator(name, **b), cause=["b1 and b2"], fix=["must be finite"])

@pytest.mark.parametrize("name", ["ss", "sas", "aas"])
@pytest.mark.parametrize("which", ["b1", "b2"])
def test_zero_plane_vector(name, which):
    e = torch.eye(D); b = dict(b1=e[0], b2=e[1]); b[which] = torch.zeros(D)
    raises_clear(ValueError, lambda: O.make_operator(name, **b), cause=[f"||{which}|| = 0"], fix=["must be a unit vector"])

@pytest.mark.parametrize("which", ["b1", "b2"])
def test_zero_plane_vector_is_told_to_be_non_zero(which):
    "`unit(b1)` fails on a zero vector too, so the fix for a zero b1/b2 is a non-zero vector, not `unit(...)`."
    e = torch.eye(D); b = dict(b1=e[0], b2=e[1]); b[which] = torch.zeros(D)
    msg = raises_clear(ValueError, lambda: O.make_operator("ss", **b), cause=[f"{which} is all zeros"], fix=[f"{which} must be non-zero"])
    assert f"pass unit({which})" not in msg, msg

def test_parallel_plane_vectors():
    e = torch.eye(D)
    raises_clear(ValueError, lambda: O.make_operator("ss", b1=e[0], b2=e[0]),
                 cause=["must be orthogonal"], fix=["orthonormal_plane(b1, b2)"])

def test_zero_ablation_direction():
    raises_clear(ValueError, lambda: O.make_operator("dirabl", u=torch.zeros(D)), cause=["zero"], fix=["must be non-zero"])

def test_zero_ablation_direction_names_u():
    "Bound by make_operator and called directly, a zero `u` is named (not 'unit() got a zero ... vector')."
    for f in (lambda: O.make_operator("dirabl", u=torch.zeros(D)), lambda: O.dirabl(torch.ones(D), torch.zeros(D))):
        raises_clear(ValueError, f, cause=["u is all zeros", "no direction to ablate"], fix=["u must be non-zero"])

@pytest.mark.parametrize("name", ["add", "actadd", "scale_units"])
def test_all_zero_steering_vector(name):
    arg = O.OPERATORS[name].dirs[0]
    raises_clear(ValueError, lambda: O.make_operator(name, **{arg: torch.zeros(D)}), cause=[arg, "all zeros"], fix=["non-zero"])

@pytest.mark.parametrize("name", ["ss", "sas", "aas"])
def test_plane_vectors_of_different_lengths(name):
    e = torch.eye(D)
    raises_clear(ValueError, lambda: O.make_operator(name, b1=e[0], b2=e[1][:32]), cause=["b2", "got (32,)"], fix=["must have shape (64,)"])

@pytest.mark.parametrize("name", ["add", "actadd", "dirabl", "scale_units"])
def test_direction_not_one_dimensional(name):
    arg = O.OPERATORS[name].dirs[0]
    raises_clear(ValueError, lambda: O.make_operator(name, **{arg: torch.ones(2, D)}), cause=[arg, "got (2, 64)"], fix=["must have shape (64,)"])

@pytest.mark.parametrize("name", ["add", "actadd", "dirabl", "scale_units", "ss", "sas", "aas"])
def test_wrong_width_vector_when_steering(mt, name):
    "A 32-wide direction on the 64-wide model: the first forward under steering names the argument and the width it needs."
    dirs = O.OPERATORS[name].dirs
    vec = dict(zip(dirs, torch.eye(32)[:len(dirs)]))
    op = O.make_operator(name, **vec)
    p = None if O.OPERATORS[name].param_name is None else 1.0
    raises_clear(ValueError, lambda: G.generate(*mt, ["Hi"], steer.interventions(op, [1], "resid_in"), params=p, method=name,
                                                max_new_tokens=2, progress=False),
                 cause=[dirs[0], "got (32,)"], fix=["must have shape (64,)"])


# ------------------------------------------------------------------------------------ parameter grid of the wrong type
GRID_CASES = [   # grid, what happened before the check in method / in sweep, the cause the message must name, the fix it
    # must name. One check (methods.check_grid) serves both entry points; grid=None is the default grid, [None] is for dirabl
    ("90", "is taken as the grid ['9', '0']", "silently sweeps theta 9 and 0", ["grid", "str"], ["list"]),
    ({90: 1}, "keeps the dict's keys", "silently sweeps the keys", ["grid", "dict"], ["list"]),
    ([], "gives an empty grid", "fails with 'generate got no prompts' (the wrong cause)", ["grid", "empty"], ["at least one"]),
    (["a"], "is accepted", "fails with a bare \"could not convert string to float: 'a'\"", ["grid", "'a'"], ["number"]),
    ([None], "is accepted for SS (which has a parameter)", "fails with a raw TypeError 'must be real number, not NoneType'",
     ["grid", "None", "theta"], ["number"]),
]

def _grid_call(entry, mt, v, grid):
    if entry == "method": return lambda: methods.method(v, mt[0], grid=grid)
    m = methods.method(v, mt[0])
    return lambda: evaluate.sweep(*mt, ["Hi"], m, grid=grid, max_new_tokens=2, cache=False, progress=False)

@pytest.mark.parametrize("entry", ["method", "sweep"])
@pytest.mark.parametrize("grid,cause,fix", [
    pytest.param(g, c, f, id=repr(g)) for g, n1, n2, c, f in GRID_CASES])
def test_grid_of_the_wrong_type(mt, ss_v, entry, grid, cause, fix):
    raises_clear(ValueError, _grid_call(entry, mt, ss_v, grid), cause=cause, fix=fix)

@pytest.mark.parametrize("entry", ["method", "sweep"])
def test_grid_for_a_method_without_parameter(mt, dirabl_v, entry):
    raises_clear(ValueError, _grid_call(entry, mt, dirabl_v, [1.0, 2.0]), cause=["dirabl", "no parameter"], fix=["drop grid"])

def test_grid_none_means_the_default(mt, ss_v):
    "Not a bad input: grid=None is the registry's default grid."
    assert methods.method(ss_v, mt[0], grid=None).grid == list(methods.ANGLES)

@pytest.mark.parametrize("cfg,name,cause,fix", [
    pytest.param(dict(jailbreak_actadd_grid=-1.0), "actadd", ["jailbreak_actadd_grid", "float"], ["(-1.0,)"], id="scalar-grid"),
    pytest.param(dict(angle_step=0), "ss", ["angle_step", "0"], ["positive"], id="angle-step-0"),
])
def test_study_config_grid(cfg, name, cause, fix):
    raises_clear(ValueError, lambda: study.jailbreak_grid(name, study.StudyConfig(**cfg)), cause=cause, fix=fix)


# -------------------------------------------------------------------------------------------- artifact from another model
FIT_AGAIN = ["fit them again on this model"]

def test_saved_vectors_loaded_on_another_family(ss_v, other, tmp_path):
    ss_v.save(tmp_path/"v")
    raises_clear(methods.VectorsError, lambda: methods.Vectors.load(tmp_path/"v", other),
                 cause=["fitted on 'tiny-llama-seed0'", model_fingerprint(other)], fix=FIT_AGAIN, strip=[tmp_path])

def test_vectors_checked_against_another_model(ss_v, other):
    raises_clear(methods.VectorsError, lambda: ss_v.check(other), cause=["fitted on 'tiny-llama-seed0'"], fix=FIT_AGAIN)
    raises_clear(methods.VectorsError, lambda: methods.method(ss_v, other), cause=["fitted on 'tiny-llama-seed0'"], fix=FIT_AGAIN)

def test_vectors_of_the_same_family_other_weights(ss_v):
    "Same architecture and width, other weights: the fingerprint tells them apart."
    raises_clear(methods.VectorsError, lambda: ss_v.check(tiny_model("llama", seed=1)[0]), cause=["fitted on"], fix=FIT_AGAIN)

def test_vectors_of_another_width_without_fingerprint(other):
    v = methods.direction_vectors("actadd", torch.ones(D), layer=1)
    raises_clear(methods.VectorsError, lambda: methods.method(v, other), cause=["width 64", "width 32"], fix=FIT_AGAIN)

def test_saved_plane_loaded_on_another_model(mt, other, tmp_path):
    P = directions.calibrate_plane(*mt, ["How do I pick a lock?", "Write malware."], ["Bake bread.", "Name a fruit."],
                             layers=[0, 1], progress=False)
    P.save(tmp_path/"p")
    raises_clear(directions.PlaneMismatchError, lambda: directions.Plane.load(tmp_path/"p", other),
                 cause=["calibrated on 'tiny-llama-seed0'"], fix=["calibrate again on this model"], strip=[tmp_path])
    raises_clear(methods.VectorsError, lambda: methods.method(methods.plane_vectors(P, "sas"), other),
                 cause=["fitted on 'tiny-llama-seed0'"], fix=FIT_AGAIN)

def test_missing_saved_vectors(mt, tmp_path):
    raises_clear(FileNotFoundError, lambda: methods.Vectors.load(tmp_path/"nothing", mt[0]),
                 cause=["No saved vectors", "vectors.json"], fix=["fit and save them first"], strip=[tmp_path])

def test_missing_saved_plane(tmp_path):
    raises_clear(FileNotFoundError, lambda: directions.Plane.load(tmp_path/"nothing"),
                 cause=["No saved plane", "plane.json"], fix=["save it first"], strip=[tmp_path])

def test_changed_vectors_file(ss_v, mt, tmp_path):
    d = ss_v.save(tmp_path/"v")
    j = (d/"vectors.json").read_text(); (d/"vectors.json").write_text(j.replace('"layer": 1', '"layer": 2'))
    raises_clear(methods.VectorsError, lambda: methods.Vectors.load(d, mt[0]),
                 cause=["do not match their recorded key"], fix=["fit them again"], strip=[tmp_path])


# --------------------------------------------------------------------------------------------- unreadable prompts file
PROMPTS_FIX = ["one prompt per line"]           # what a valid file is: the fix every file-level error should state

def _bad_file(tmp_path, kind) -> Path:
    "A prompts file of `kind`: missing, dir, binary, empty, badjson, nonstring."
    p = tmp_path/{"badjson": "p.jsonl", "nonstring": "p.jsonl"}.get(kind, "p.txt")
    if kind == "dir": p = tmp_path/"prompts_dir"; p.mkdir()
    elif kind == "binary": p.write_bytes(b"\xff\xfe\x00abc\x80\n")
    elif kind == "empty": p.write_text("")
    elif kind == "badjson": p.write_text('{"prompt": "Hi"}\n{"prompt": \n')
    elif kind == "nonstring": p.write_text('{"prompt": "Hi"}\n{"prompt": 3}\n')
    return p

READ_CASES = [   # kind, cause, fix, xfail reason (None: clear today)
    ("missing", ["does not exist"], PROMPTS_FIX, None),
    ("dir", ["is a directory"], PROMPTS_FIX, None),
    ("binary", ["not UTF-8"], PROMPTS_FIX, None),
    ("empty", ["is empty"], PROMPTS_FIX, None),
    ("badjson", ["line 2", "not valid JSON"], ['{"prompt": '], None),
    ("nonstring", ["line 2"], ["non-empty string field 'prompt'"], None),
]

@pytest.mark.parametrize("kind,cause,fix", [pytest.param(k, c, f, id=k, marks=[xfail(r)] if r else [])
                                            for k, c, f, r in READ_CASES])
def test_read_prompts_bad_file(tmp_path, kind, cause, fix):
    p = _bad_file(tmp_path, kind)
    raises_clear(ValueError, lambda: cli.read_prompts(p), cause=cause, fix=fix, strip=[tmp_path])


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, mt):
    "The tiny llama saved as a local model directory (a `--model` that needs no network)."
    d = tmp_path_factory.mktemp("tiny")
    mt[0].save_pretrained(d); mt[1].save_pretrained(d)
    return d

# tests/test_cli_steer.py covers a missing, an empty and a field-less JSONL prompts file; these are the others
@pytest.mark.parametrize("kind,cause,fix", [pytest.param(k, c, f, id=k, marks=[xfail(r)] if r else [])
                                            for k, c, f, r in READ_CASES if k in ("dir", "binary", "badjson", "nonstring")])
def test_cli_generate_bad_prompts_file_exits_2(tiny_dir, tmp_path, kind, cause, fix):
    p, out = _bad_file(tmp_path, kind), tmp_path/"o.jsonl"
    r = steerkit_here("generate", "--model", tiny_dir, "--method", "none", "--prompts", p, "--out", out, "--max-new-tokens", 2)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "steerkit: error: " in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
    check_msg(r.stderr, cause, fix, strip=[tmp_path])
    assert not out.exists()

def test_cli_generate_calibration_dir_without_vectors_exits_2(tiny_dir, tmp_path):
    (tmp_path/"empty_calibration").mkdir()
    p = tmp_path/"p.txt"; p.write_text("Hi\n")
    r = steerkit_here("generate", "--model", tiny_dir, "--method", "ss", "--prompts", p, "--out", tmp_path/"o.jsonl",
                "--calibration", tmp_path/"empty_calibration")
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    check_msg(r.stderr, cause=["No frozen calibration in"], fix=["steerkit calibrate --model", "--method ss"], strip=[tmp_path])
    assert not (tmp_path/"o.jsonl").exists()
