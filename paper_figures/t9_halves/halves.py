"""Why are SAAS's half-split vectors anti-correlated in T9? Usage: python halves.py BEHAVIOUR LAYER (T9 chose layer 9 for
coordinate-other-ais). Prints, per split of the 64 fit pairs into two halves (T9's seeds), the cosine between the
halves' vectors for four variants; the norms of the letter-free mean, the letter direction g and a pair's difference;
and each half's cosine with the vector of all 64 pairs."""
import torch, torch.nn.functional as F
torch.set_num_threads(2)
from steerkit.models import load_model
from steerkit.caa import ab_splits, ab_activations, CAA_SITE
from steerkit.saas import letter_signs, letter_free, eligibility, saas_from_acts, kit_decomposition, embedding_ratings
m, tok = load_model("embedded")
import sys
b, L = sys.argv[1], int(sys.argv[2])
fit = ab_splits(b, 64, 32, 48, 0)[0]
ap, an = ab_activations(m, tok, fit, layers=[L], progress=False)
P, N = ap.at(L, CAA_SITE).double(), an.at(L, CAA_SITE).double()
sg = letter_signs(fit); dec = kit_decomposition(b); R = embedding_ratings(fit, dec)
d = P - N
cos = lambda a, b: float(F.cosine_similarity(a, b, dim=0))
for s_ in range(5):
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(1000 + s_)); h = [perm[:32], perm[32:]]
    out = {}
    for name in ("raw mean", "letter-free mean", "eligible only", "saas"):
        vs = []
        for idx in h:
            if name == "raw mean": v = d[idx].mean(0)
            elif name == "letter-free mean": v = letter_free(d[idx], sg[idx])[0].mean(0)
            else: v = saas_from_acts(P[idx], N[idx], R[idx], dec.priors, eligible=True, weighted=(name == "saas"), letters=sg[idx])[0].double()
            vs.append(v)
        out[name] = round(cos(*vs), 3)
    tab = [eligibility(P[idx], N[idx], 0.7, sg[idx]) for idx in h]
    nA = [int((sg[idx] > 0).sum()) for idx in h]
    # does each half's eligible set overlap with the full set's eligible?
    out["n_A per half"] = nA; out["eligible"] = [int(t.eligible.sum()) for t in tab]
    out["cos(g_h1,g_h2)"] = round(cos(letter_free(d[h[0]], sg[h[0]])[1], letter_free(d[h[1]], sg[h[1]])[1]), 3)
    print(s_, out)
full = letter_free(d, sg)[0].mean(0)
print("|letter-free mean full|", float(full.norm()), "|g|", float(letter_free(d, sg)[1].norm()), "mean |d_i|", float(d.norm(dim=1).mean()))
# the complementary-halves structure: deviations of each half's vector from the full-set vector
def variant(name, idx):
    if name == "letter-free mean": return letter_free(d[idx], sg[idx])[0].mean(0)
    return saas_from_acts(P[idx], N[idx], R[idx], dec.priors, eligible=True, weighted=(name == "saas"), letters=sg[idx])[0].double()
allidx = torch.arange(64)
for name in ("letter-free mean", "eligible only", "saas"):
    vS = variant(name, allidx); vS = vS / vS.norm()
    rows = []
    for s_ in range(5):
        perm = torch.randperm(64, generator=torch.Generator().manual_seed(1000 + s_)); h = [perm[:32], perm[32:]]
        v1, v2 = (variant(name, i) for i in h); v1, v2 = v1 / v1.norm(), v2 / v2.norm()
        rows.append((round(cos(v1, vS), 3), round(cos(v2, vS), 3), round(cos(v1, v2), 3)))
    print(name, "cos(half1, full), cos(half2, full), cos(half1, half2):", rows)
