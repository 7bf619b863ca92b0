"""GPU check of steerkit: kernels, steering, the KV cache and a split model on a CUDA device, plus a throughput figure.

Needs no network and no install beyond torch, transformers, accelerate, pandas, numpy, tqdm, safetensors and tokenizers:
it uses random models (a tiny Llama, and a model with SmolLM2-135M's config saved to a temporary directory) and imports
only `steerkit.models`, `steerkit.operators`, `steerkit.adapters`, `steerkit.steer` and `steerkit.bench`.

What it checks (each a line of the report with the measured number and its tolerance; `rtol(dtype)` = sqrt(eps)):
1. kernels: every operator of `steerkit.operators.OPERATORS` on the device in float32 and bfloat16 vs the CPU in float32
   (rel_gap <= 4 rtol); SS keeps norms (|ratio - 1| <= 4 rtol) and one theta per row equals each row steered alone;
2. a tiny Llama steered with SS at layers [2, 3]: device float32 vs CPU float32 logits (rel_gap <= 10 rtol), device
   bfloat16 vs CPU float32 (Pearson correlation > 0.98), and the steering changes the logits (rel_gap > 10 rtol);
3. steered greedy generation with the KV cache (left-padded batch, one theta per row) vs one forward pass without the
   cache over prompt + generated tokens (teacher forcing): logits within 10 rtol in float32;
4. the SmolLM2-135M-config model loaded on the device and split by accelerate over the device and the CPU
   (`device_map="auto"`, `max_memory`): more than one device in the map, and the same steered logits within 10 rtol;
5. throughput (a figure, never a check): tokens/s of greedy generation unsteered vs SS-steered, bfloat16 on the GPU
   (batch 1 and 32, 64 new tokens) and float32 on the CPU (batch 1 and 8, 32 new tokens).
Parts 4 and 5 are skipped, with a note, once the time budget (`--budget`, seconds) is spent.

Run from the repository root:  PYTHONPATH=. python3 tools/gpu_check.py --out $OUT/gpu_check.md
It prints the markdown report and writes it to `--out`; exit status 1 when a check failed. Without CUDA it checks
nothing, writes nothing and exits 0. `--dry-run-cpu` runs the same code with the CPU playing the GPU and tiny sizes
(for the tests): its report measures nothing about GPUs.
"""
import argparse, copy, datetime, statistics, sys, tempfile, time, traceback
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch

from steerkit.adapters import adapter
from steerkit.bench import fixed_generate, machine
from steerkit.models import load_model, model_device, position_ids, rel_gap, rtol, tiny_config
from steerkit.operators import OPERATORS, make_operator, norm_ratio, orthonormal_plane
from steerkit.steer import greedy, interventions, steering

SITES = ["input_layernorm", "post_attention_layernorm"]
THETA = 120.0
OP_PARAMS = {"ss": THETA, "sas": THETA, "aas": THETA, "actadd": 2.0, "add": 2.0, "dirabl": None, "scale_units": 0.5}
DTYPE_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16"}
SMOLLM2_135M = dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                    vocab_size=49152, max_position_embeddings=8192, rms_norm_eps=1e-5, rope_theta=100000.0,
                    tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=2)


@dataclass(frozen=True)
class Plan:
    "Where the checks run and how big they are."
    dry_run: bool
    device: str                  # the device under test: 'cuda:0', or 'cpu' in the dry run
    big_layers: int              # layers of the SmolLM2-135M-config model
    prompt_lens: tuple           # lengths of the two rows of the left-padded batches
    kv_new_tokens: int
    device_batches: tuple        # throughput on the device, bfloat16
    device_new_tokens: int
    cpu_batches: tuple           # throughput on the CPU, float32
    cpu_new_tokens: int
    bench_prompt_len: int
    repeats: int
    cpu_threads: int = None      # torch threads on the CPU; None: torch's default

GPU_PLAN = Plan(False, "cuda:0", 30, (16, 11), 12, (1, 32), 64, (1, 8), 32, 32, 3)
# one thread: on a small shared machine, torch's threads fighting another process make tiny models many times slower
DRY_PLAN = Plan(True, "cpu", 4, (8, 5), 6, (1, 2), 8, (1, 2), 8, 8, 1, cpu_threads=1)


@dataclass
class Check:
    "One line of the report: `value op bound` must hold (a NaN value never passes)."
    name: str
    value: float
    op: str                      # '<=' or '>'
    bound: float
    detail: str = ""

    @property
    def ok(self) -> bool:
        if self.op == "<=": return self.value <= self.bound
        if self.op == ">": return self.value > self.bound
        return False

    def row(self) -> str:
        measured = f"{self.value:.3g}" + (f" ({self.detail})" if self.detail else "")
        tol = f"{self.op} {self.bound:.3g}" if self.op else "-"
        return f"| {self.name} | {measured} | {tol} | {'ok' if self.ok else 'FAILED'} |"


@dataclass
class Report:
    plan: Plan
    budget: float
    started: float = field(default_factory=time.time)
    checks: list = field(default_factory=list)
    throughput: list = field(default_factory=list)    # dicts, one per (device, dtype, batch)
    split: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    errors: list = field(default_factory=list)

    def elapsed(self) -> float: return time.time() - self.started
    def over_budget(self) -> bool: return self.elapsed() > self.budget
    def failed(self) -> list: return [c for c in self.checks if not c.ok]


def log(report: Report, msg: str):
    print(f"[gpu_check {report.elapsed():6.1f}s] {msg}", file=sys.stderr, flush=True)


# --- helpers --------------------------------------------------------------------------------------------------------
def dname(dtype) -> str: return DTYPE_NAMES.get(dtype, str(dtype).removeprefix("torch."))

def sync(device):
    if torch.device(device).type == "cuda": torch.cuda.synchronize()

def random_plane(d: int) -> tuple:
    "An orthonormal pair (b1, b2) of width `d` (float32, from the global seed)."
    return orthonormal_plane(torch.randn(d), torch.randn(d))

def left_padded(lengths, vocab: int, pad_id: int) -> dict:
    "A batch of random token ids, one row per length, left padded with `pad_id` (ids drawn from 3..vocab-1)."
    T = max(lengths)
    ids = torch.full((len(lengths), T), pad_id, dtype=torch.long)
    mask = torch.zeros(len(lengths), T, dtype=torch.long)
    for i, n in enumerate(lengths):
        ids[i, T - n:] = torch.randint(3, vocab, (n,))
        mask[i, T - n:] = 1
    return dict(input_ids=ids, attention_mask=mask)

@torch.no_grad()
def logits(model, enc: dict, ivs=None, param=None) -> torch.Tensor:
    "Logits (float32, on the CPU) of one forward pass without the cache, steered by `ivs` with `param` when given."
    dev = model_device(model)
    enc = {k: v.to(dev) for k, v in enc.items()}
    with (steering(model, ivs, param=param) if ivs is not None else nullcontext()):
        out = model(**enc, position_ids=position_ids(enc["attention_mask"]), use_cache=False)
    return out.logits.float().cpu()

def real(x: torch.Tensor, enc: dict) -> torch.Tensor:
    "The rows of `x` (B, T, V) at real (not padding) positions: (N, V)."
    return x[enc["attention_mask"].bool().cpu()]

def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten().double(), b.flatten().double()]))[0, 1])

def last_third(n_layers: int) -> list: return list(range(n_layers - max(1, n_layers // 3), n_layers))

def nbytes(module) -> int: return sum(p.numel() * p.element_size() for p in module.parameters())


# --- 1. kernels -----------------------------------------------------------------------------------------------------
def operator_directions(d: int) -> dict:
    "Every direction any operator takes, width `d`."
    b1, b2 = random_plane(d)
    return dict(b1=b1, b2=b2, r=torch.randn(d), v=torch.randn(d), u=torch.randn(d), w=torch.rand(d))

def check_kernels(plan: Plan, report: Report):
    torch.manual_seed(0)
    h = torch.randn(4, 7, 576)
    dirs = operator_directions(h.shape[-1])
    for dtype in (torch.float32, torch.bfloat16):
        tol = 4 * rtol(dtype)
        hd = h.to(plan.device, dtype)
        for name, spec in OPERATORS.items():
            op = make_operator(name, **{k: dirs[k] for k in spec.dirs})
            ref, got = op(h, OP_PARAMS[name]), op(hd, OP_PARAMS[name])
            report.checks.append(Check(f"kernel {name} {dname(dtype)} vs cpu fp32", rel_gap(got.float().cpu(), ref), "<=", tol))
        ss = make_operator("ss", b1=dirs["b1"], b2=dirs["b2"])
        ratio = norm_ratio(hd, ss(hd, THETA))
        report.checks.append(Check(f"ss norm ratio {dname(dtype)}: max abs(ratio - 1)", float((ratio - 1).abs().max()), "<=", tol))
        thetas = torch.tensor([0.0, 45.0, THETA, 300.0])
        together = ss(hd, thetas)
        alone = torch.cat([ss(hd[i:i + 1], float(t)) for i, t in enumerate(thetas)])
        report.checks.append(Check(f"ss per-row theta {dname(dtype)}: batch vs rows alone", rel_gap(together.float().cpu(), alone.float().cpu()), "<=", tol))


# --- 2. a tiny model ------------------------------------------------------------------------------------------------
def tiny_llama(seed: int = 0):
    from transformers import AutoModelForCausalLM
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(tiny_config("llama"), dtype=torch.float32).eval().requires_grad_(False)

def tiny_steering(model) -> list:
    b1, b2 = random_plane(model.config.hidden_size)
    return interventions(make_operator("ss", b1=b1, b2=b2), [2, 3], SITES)

def check_tiny_model(plan: Plan, report: Report):
    base = tiny_llama()
    torch.manual_seed(1)
    enc = left_padded(plan.prompt_lens, base.config.vocab_size, base.config.pad_token_id)
    ivs = tiny_steering(base)
    cpu32 = copy.deepcopy(base)
    dev32 = copy.deepcopy(base).to(plan.device)
    dev16 = copy.deepcopy(base).to(plan.device, torch.bfloat16)
    ref = real(logits(cpu32, enc, ivs, THETA), enc)
    got32 = real(logits(dev32, enc, ivs, THETA), enc)
    got16 = real(logits(dev16, enc, ivs, THETA), enc)
    plain32 = real(logits(dev32, enc), enc)
    tol = 10 * rtol(torch.float32)
    report.checks += [
        Check("tiny llama steered logits fp32 vs cpu fp32", rel_gap(got32, ref), "<=", tol),
        Check("tiny llama steered logits bf16 vs cpu fp32: pearson r", pearson(got16, ref), ">", 0.98),
        Check("tiny llama steering changes logits fp32: rel_gap steered vs unsteered", rel_gap(got32, plain32), ">", tol)]


# --- 3. the KV cache ------------------------------------------------------------------------------------------------
def kv_cache_vs_teacher_forcing(model, enc: dict, ivs, thetas, n: int) -> tuple:
    "rel_gap of the per-step logits of cached greedy generation vs one uncached forward over prompt + new tokens; steps."
    dev = model_device(model)
    enc = {k: v.to(dev) for k, v in enc.items()}
    with steering(model, ivs, param=thetas):
        new, step_logits = greedy(model, enc, n, use_cache=True)
    steps = step_logits.shape[1]
    full = dict(input_ids=torch.cat([enc["input_ids"], new[:, :steps]], 1),
                attention_mask=torch.cat([enc["attention_mask"], torch.ones_like(new[:, :steps])], 1))
    forced = logits(model, full, ivs, thetas)
    P = enc["input_ids"].shape[1]                       # position P - 1 + k predicted new token k
    return rel_gap(forced[:, P - 1:P - 1 + steps], step_logits.float().cpu()), steps

def check_kv_cache(plan: Plan, report: Report):
    model = tiny_llama().to(plan.device)
    torch.manual_seed(2)
    enc = left_padded(plan.prompt_lens, model.config.vocab_size, model.config.pad_token_id)
    ivs = tiny_steering(model)
    gap, steps = kv_cache_vs_teacher_forcing(model, enc, ivs, torch.tensor([THETA, 60.0]), plan.kv_new_tokens)
    report.checks.append(Check("kv cache steered greedy vs teacher forcing fp32", gap, "<=", 10 * rtol(torch.float32),
                               f"2 rows x {steps} steps, thetas 120/60"))


# --- 4. a model split over the device and the CPU ---------------------------------------------------------------------
def minimal_tokenizer():
    "A word-level tokenizer with <unk>, <s>, </s> (ids 0, 1, 2; </s> also pads) and a few words: `load_model` needs one."
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    vocab = {w: i for i, w in enumerate(["<unk>", "<s>", "</s>", "hello", "world", "steer", "the", "model"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="</s>")

def save_random_smollm2(path: Path, n_layers: int) -> Path:
    "A random model with SmolLM2-135M's config (`n_layers` layers) and a minimal tokenizer, saved to `path`."
    from transformers import AutoConfig, AutoModelForCausalLM
    torch.manual_seed(3)
    cfg = AutoConfig.for_model("llama", **{**SMOLLM2_135M, "num_hidden_layers": n_layers})
    AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).save_pretrained(path)
    minimal_tokenizer().save_pretrained(path)
    return path

def split_max_memory(model, plan: Plan) -> dict:
    """Room for the embeddings and about half of the decoder layers (plus one layer, which accelerate keeps free) on the
    device under test; the rest goes to the CPU (on a GPU) or to disk (dry run, where the CPU plays the GPU)."""
    layers = adapter(model).layers
    room = nbytes(model.get_input_embeddings()) + (len(layers) // 2 + 1) * nbytes(layers[0])
    return {"cpu": room} if plan.dry_run else {0: room, "cpu": "8GB"}

def device_label(d) -> str:
    "A device of accelerate's map as a name: the GPU index 0 as 'cuda:0'; 'cpu', 'disk' as they are."
    return f"cuda:{d}" if isinstance(d, int) else str(d)

def placed_on(device_map: dict, name: str) -> str:
    "The device of module `name` in accelerate's map: the entry of its longest prefix in the map."
    while name not in device_map and name: name = name.rpartition(".")[0]
    return device_label(device_map.get(name, "?"))

def layers_per_device(device_map: dict, n_layers: int) -> dict:
    "How many decoder layers `model.layers.i` each device holds, read from accelerate's map (longest matching prefix)."
    counts = {}
    for i in range(n_layers):
        d = placed_on(device_map, f"model.layers.{i}")
        counts[d] = counts.get(d, 0) + 1
    return counts

def check_split_model(plan: Plan, report: Report, ckpt: Path, offload: Path):
    single, _ = load_model(str(ckpt), dtype="float32", device=plan.device)
    max_memory = split_max_memory(single, plan)
    split, _ = load_model(str(ckpt), dtype="float32", device_map="auto", max_memory=max_memory, offload_folder=str(offload))
    dm = split.hf_device_map
    n = single.config.num_hidden_layers
    per_dev = layers_per_device(dm, n)
    report.split = dict(max_memory={str(k): (f"{v / 2**20:.0f} MiB" if isinstance(v, int) else v) for k, v in max_memory.items()},
                        fp32_mib=nbytes(single) / 2**20, layers=per_dev,
                        embeddings=placed_on(dm, "model.embed_tokens"),
                        input_device=str(model_device(split)))
    torch.manual_seed(4)
    enc = left_padded(plan.prompt_lens, single.config.vocab_size, single.config.pad_token_id)
    b1, b2 = random_plane(single.config.hidden_size)
    ivs = interventions(make_operator("ss", b1=b1, b2=b2), last_third(n), SITES)
    ref, got = real(logits(single, enc, ivs, THETA), enc), real(logits(split, enc, ivs, THETA), enc)
    plain = real(logits(split, enc), enc)
    tol = 10 * rtol(torch.float32)
    layout = ", ".join(f"{d}: {k}" for d, k in per_dev.items())
    report.checks += [
        Check("split model: devices in the device map", len(set(map(device_label, dm.values()))), ">", 1, f"layers {layout}"),
        Check("split model steered logits vs single device fp32", rel_gap(got, ref), "<=", tol, f"SS at layers {last_third(n)[0]}-{n - 1}"),
        Check("split model steering changes logits: rel_gap steered vs unsteered", rel_gap(got, plain), ">", tol)]


# --- 5. throughput ----------------------------------------------------------------------------------------------------
def time_generation(model, enc: dict, n: int, ivs=None) -> float:
    "Seconds of greedy generation of exactly `n` new tokens (SS-steered at THETA when `ivs` is given)."
    dev = model_device(model)
    with (steering(model, ivs, param=THETA) if ivs is not None else nullcontext()):
        sync(dev); t0 = time.perf_counter()
        fixed_generate(model, enc, n)
        sync(dev)
    return time.perf_counter() - t0

def throughput_row(model, ivs, batch: int, n: int, plan: Plan, report: Report) -> dict:
    """Median tokens/s unsteered and steered over `plan.repeats` interleaved repeats, after one warm-up run of each;
    None (with a note) when the warm-up says the repeats would overrun the time budget."""
    torch.manual_seed(5)
    enc = {k: v.to(model_device(model)) for k, v in left_padded([plan.bench_prompt_len] * batch, model.config.vocab_size, 2).items()}
    warm = time_generation(model, enc, n) + time_generation(model, enc, n, ivs)
    if report.elapsed() + plan.repeats * warm > report.budget:
        report.notes.append(f"throughput {model_device(model)} batch {batch}: skipped after the warm-up ({warm:.1f} s for one "
                            f"run of each arm), {plan.repeats} repeats would overrun the time budget of {report.budget:.0f} s")
        return None
    times = {"unsteered": [], "steered": []}
    for r in range(plan.repeats):
        for arm in (("unsteered", "steered") if r % 2 == 0 else ("steered", "unsteered")):
            times[arm].append(time_generation(model, enc, n, ivs if arm == "steered" else None))
    tps = {arm: batch * n / statistics.median(t) for arm, t in times.items()}
    p = next(model.parameters())
    return dict(device=str(model_device(model)), dtype=dname(p.dtype), batch=batch, new_tokens=n,
                unsteered=tps["unsteered"], steered=tps["steered"], ratio=tps["steered"] / tps["unsteered"])

def run_throughput(plan: Plan, report: Report, ckpt: Path):
    for device, dtype, batches, n in ((plan.device, torch.bfloat16, plan.device_batches, plan.device_new_tokens),
                                      ("cpu", torch.float32, plan.cpu_batches, plan.cpu_new_tokens)):
        model, _ = load_model(str(ckpt), dtype=dtype, device=device)
        torch.manual_seed(4)
        b1, b2 = random_plane(model.config.hidden_size)
        ivs = interventions(make_operator("ss", b1=b1, b2=b2), last_third(model.config.num_hidden_layers), SITES)
        for batch in batches:
            if report.over_budget():
                report.notes.append(f"throughput {device} {dname(dtype)} batch {batch}: skipped, over the time budget of {report.budget:.0f} s")
                continue
            log(report, f"throughput {device} {dname(dtype)} batch {batch}")
            row = throughput_row(model, ivs, batch, n, plan, report)
            if row is not None: report.throughput.append(row)
        del model
        if torch.cuda.is_available(): torch.cuda.empty_cache()


# --- the report -------------------------------------------------------------------------------------------------------
def rerun_command(plan: Plan) -> str:
    return "PYTHONPATH=. python3 tools/gpu_check.py" + (" --dry-run-cpu" if plan.dry_run else "") + " --out paper_figures/gpu_check.md"

def header(plan: Plan, report: Report) -> list:
    import transformers, accelerate
    m = machine()
    if plan.dry_run:
        title = "# GPU check: CPU dry run (the CPU plays the GPU; nothing about GPUs is measured)"
        gpu = "none: CPU dry run"
    else:
        p = torch.cuda.get_device_properties(0)
        title = f"# GPU check: steerkit on {p.name}"
        gpu = f"{p.name}, {p.total_memory / 2**30:.1f} GiB, CUDA {torch.version.cuda}"
    failed = report.failed()
    result = (f"**all {len(report.checks)} checks ok**" if not failed else
              f"**FAILED: {len(failed)} of {len(report.checks)} checks** ({'; '.join(c.name for c in failed)})")
    return [title, "", f"Result: {result}", "",
            f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
            f"- torch {torch.__version__}, transformers {transformers.__version__}, accelerate {accelerate.__version__}; "
            f"float32 matmul precision '{torch.get_float32_matmul_precision()}'",
            f"- GPU: {gpu}",
            f"- CPU: {m['cpu']}, {m['cores']} cores (torch threads {m['threads']})",
            f"- wall time: {report.elapsed():.1f} s (budget {report.budget:.0f} s)",
            f"- re-run: `{rerun_command(plan)}` from the repository root"]

def render(plan: Plan, report: Report) -> str:
    lines = header(plan, report)
    lines += ["", "## Checks", "", "rtol(dtype) = sqrt(eps): fp32 %.3g, bf16 %.3g; rel_gap = max|a - b| / max magnitude." % (rtol(torch.float32), rtol(torch.bfloat16)),
              "", "| check | measured | tolerance | result |", "|---|---|---|---|"]
    lines += [c.row() for c in report.checks]
    if report.split:
        s = report.split
        lines += ["", "## Split model", "",
                  f"SmolLM2-135M config, {plan.big_layers} layers, random weights, {s['fp32_mib']:.0f} MiB in fp32; "
                  f"max_memory {s['max_memory']}; embeddings on {s['embeddings']}; inputs go to {s['input_device']}; "
                  f"decoder layers per device: {', '.join(f'{d}: {k}' for d, k in s['layers'].items())}."]
    lines += ["", "## Throughput", "",
              f"Greedy generation of exactly N new tokens with the KV cache (`steerkit.bench.fixed_generate`), random prompts of "
              f"{plan.bench_prompt_len} tokens, unsteered vs SS at theta {THETA:g} on the last third of the layers; median of "
              f"{plan.repeats} interleaved repeats after a warm-up. A measurement, not a check.", "",
              "| device | dtype | batch | new tokens | unsteered tok/s | steered tok/s | ratio |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['device']} | {r['dtype']} | {r['batch']} | {r['new_tokens']} | {r['unsteered']:.1f} | {r['steered']:.1f} | {r['ratio']:.3f} |"
              for r in report.throughput]
    if report.notes: lines += ["", "## Notes", ""] + [f"- {n}" for n in report.notes]
    if report.errors: lines += ["", "## Errors", ""] + [f"```\n{e.rstrip()}\n```" for e in report.errors]
    return "\n".join(lines) + "\n"


# --- main -------------------------------------------------------------------------------------------------------------
def run_part(name: str, fn, report: Report, optional: bool):
    "Run one part; an exception becomes a FAILED check (with its traceback in the report), never a crash."
    if optional and report.over_budget():
        report.notes.append(f"{name}: skipped, over the time budget of {report.budget:.0f} s")
        return
    log(report, name)
    try: fn()
    except Exception as e:
        report.checks.append(Check(f"{name}: raised {type(e).__name__}", float("nan"), "", float("nan"), str(e).splitlines()[0][:200].replace("|", "/") if str(e) else ""))
        report.errors.append(f"{name}:\n{traceback.format_exc()}")
        log(report, f"{name} raised {type(e).__name__}: {e}")

def run_checks(plan: Plan, budget: float) -> Report:
    report = Report(plan, budget)
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        tmp = Path(tmp)
        ckpt = tmp / "smollm2-135m-random"
        def checkpoint():
            if not (ckpt / "config.json").exists(): save_random_smollm2(ckpt, plan.big_layers)
            return ckpt
        run_part("kernels", lambda: check_kernels(plan, report), report, optional=False)
        run_part("tiny model", lambda: check_tiny_model(plan, report), report, optional=False)
        run_part("kv cache", lambda: check_kv_cache(plan, report), report, optional=False)
        run_part("split model", lambda: check_split_model(plan, report, checkpoint(), tmp / "offload"), report, optional=True)
        run_part("throughput", lambda: run_throughput(plan, report, checkpoint()), report, optional=True)
    return report

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="paper_figures/gpu_check.md", help="where the markdown report goes")
    ap.add_argument("--budget", type=float, default=420.0, help="seconds; later optional parts are skipped once spent")
    ap.add_argument("--dry-run-cpu", action="store_true", help="the CPU plays the GPU, tiny sizes (for the tests)")
    args = ap.parse_args(argv)
    if not args.dry_run_cpu and not torch.cuda.is_available():
        print("gpu_check: no CUDA device on this machine (torch.cuda.is_available() is False): nothing was checked, no report written.")
        return 0
    import transformers
    transformers.logging.set_verbosity_error()
    plan = DRY_PLAN if args.dry_run_cpu else GPU_PLAN
    if plan.cpu_threads: torch.set_num_threads(plan.cpu_threads)
    report = run_checks(plan, args.budget)
    text = render(plan, report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text, end="")
    return 1 if report.failed() else 0


if __name__ == "__main__":
    sys.exit(main())
