"""Paired comparison of two `avacast eval` reports on the same clips (issue 4: decide by the eval numbers).

Per-clip scores are noisy (lip sync swings by +-0.2 between clips), so a model change is judged by the
per-clip differences: mean difference, how many clips got better, a paired t statistic and a two-sided
sign-test p-value, not by the two means alone."""
from __future__ import annotations

import math

# measured on the mouth opening (the report's "mouth_opening_method")
MOUTH_KEYS = ("gen_lipsync", "gen_silence_opening", "gen_pause_opening", "gen_mouth_motion", "vae_lipsync",
              "vae_mouth_gain")

# (report part, per-clip key, label, +1 if higher is better / -1 if lower is better / 0 if neither)
METRICS = (
    ("vae", "psnr_1", "VAE PSNR, 1 reference (dB)", 1),
    ("vae", "psnr_swap", "VAE PSNR, another person's reference (dB)", 0),  # a diagnostic, no verdict
    ("vae", "stream_full_psnr", "VAE stream PSNR after 1 s (dB)", 1),
    ("generation", "gen_lipsync", "lip-sync score", 1),
    ("generation", "gen_psnr_after_1s", "PSNR to the real clip after 1 s (dB)", 1),
    ("generation", "gen_silence_opening", "mouth opening in silence / speech", -1),
    ("generation", "gen_pause_opening", "mouth opening in pauses / speech", -1),
    ("generation", "gen_mouth_motion", "mouth motion (std of the opening)", 0),
    ("generation", "gen_stability", "frame-to-frame change", 0),
    ("ceiling", "vae_lipsync", "lip-sync ceiling (the real clip through the VAE)", 1),
    ("ceiling", "vae_mouth_gain", "mouth amplitude the VAE keeps (1 = real)", 1),
)


PORTRAIT_LABELS = {"gen_psnr_after_1s": "PSNR to the portrait after 1 s (dB)"}  # eval --portraits reports


def sign_test_p(better: int, worse: int) -> float:
    """Two-sided binomial p-value of `better` vs `worse` under no difference (ties left out)."""
    n = better + worse
    if n == 0:
        return 1.0
    k = min(better, worse)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)


def _num(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)  # None / NaN: no value for that clip


def _rows(report: dict, part: str) -> dict[tuple, dict]:
    """Rows by (clip id, the portraits its renders started from): renders of other faces never pair."""
    return {(r["id"], *r.get("portraits", ())): r for r in ((report.get(part) or {}).get("clips") or [])}


def _label(label: str, key: str, report: dict) -> str:
    """A generation likeness of renders from portraits is measured to the portrait, not to the real clip."""
    if (report.get("config") or {}).get("portraits"):
        return PORTRAIT_LABELS.get(key, label)
    return label


def mouth_mismatch(new: dict, old: dict) -> str | None:
    """Why the mouth metrics of two reports cannot be paired (measured by different mouth-opening methods:
    face landmarks and the image proxy disagree clip by clip, even on real video), or None."""
    a, b = new.get("mouth_opening_method"), old.get("mouth_opening_method")
    if a and b and a != b:
        return f"lip sync and mouth opening left out: one report measured the mouth by {a}, the other by {b}"
    return None


def compare(new: dict, old: dict) -> list[dict]:
    """-> one row per metric both reports have on common clips: {"metric", "clips", "new", "old", "diff",
    "better", "worse", "t", "p"} (better/worse/p are None for a metric without a direction). The mouth
    metrics are left out when the reports measured the mouth differently (`mouth_mismatch`)."""
    out = []
    skip = MOUTH_KEYS if mouth_mismatch(new, old) else ()
    for part, key, label, sign in METRICS:
        if key in skip:
            continue
        a, b = _rows(new, part), _rows(old, part)
        pairs = [(a[i][key], b[i][key]) for i in a.keys() & b.keys() if _num(a[i].get(key)) and _num(b[i].get(key))]
        if not pairs:
            continue
        d = [x - y for x, y in pairs]
        n, mean = len(d), sum(d) / len(d)
        sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1)) if n > 1 else 0.0
        up = sum(x * sign > 0 for x in d) if sign else None
        down = sum(x * sign < 0 for x in d) if sign else None
        out.append({"metric": _label(label, key, new), "clips": n, "new": sum(x for x, _ in pairs) / n,
                    "old": sum(y for _, y in pairs) / n, "diff": mean,
                    "t": mean / (sd / math.sqrt(n)) if sd > 0 else None,
                    "better": up, "worse": down, "p": sign_test_p(up, down) if sign else None})
    if not out:
        raise ValueError("the two reports share no clip with a metric (evaluate both on the same pack and split)")
    return out


def markdown(rows: list[dict], new_name: str, old_name: str) -> str:
    def f(x, fmt=".3f"):
        return "n/a" if x is None else format(x, fmt)

    lines = [f"| metric | clips | {new_name} | {old_name} | mean diff | better / worse | paired t | sign p |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        bw = "n/a" if r["better"] is None else f"{r['better']} / {r['worse']}"
        lines.append(f"| {r['metric']} | {r['clips']} | {f(r['new'], '.4g')} | {f(r['old'], '.4g')} | "
                     f"{f(r['diff'], '+.4g')} | {bw} | {f(r['t'], '.2f')} | {f(r['p'], '.3f')} |")
    return "\n".join(lines)
