"""Markdown table of PSNR (full frame) per time window from results.json / vae_results.json / enc_dec_results.json."""
import os
import json
DIAG = os.environ.get("AVACAST_DIAG_DIR", "runs/diag")  # outputs of these diagnostics

r, v, e = (json.load(open(f"{DIAG}/{n}.json")) for n in ("results", "vae_results", "enc_dec_results"))
rows = [("copy of frame 0 (control)", r, "copy_ref"), ("3. VAE: GT latents (whole-clip encode), streaming decode", r, "vae"),
        ("3b. VAE: encoder+decoder restarted every 5 frames", v, "win5_1ref"),
        ("3c. VAE: short-context latents, one continuous streaming decode", e, "dec_long_of_short"),
        ("1. free-running (app path)", r, "free"), ("2. teacher-forced history", r, "tf"),
        ("4a. free, 8 steps", r, "free_s8"), ("4b. free, CFG 1", r, "free_cfg1"), ("4c. free, history_noise 0.3", r, "free_hn03")]
for key in ("psnr", "psnr_face", "colour_dist"):
    print(f"\n{key}\n\n| experiment | clip | 0-0.5 s | 0.5-1 s | 1-2 s | 2-3 s |\n|---|---|---|---|---|---|")
    for name, src, mode in rows:
        for c in src:
            if mode in src[c]:
                w = src[c][mode]["windowed"][key]
                print(f"| {name} | {c.split('_')[0]} | " + " | ".join(f"{x:.1f}" for x in w) + " |")
