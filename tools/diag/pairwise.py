"""PSNR between two saved frame stacks per time window (e.g. generated vs GT-decoded: the generator's error
as seen through the same decoder). Usage: python pairwise.py CLIP MODE_A MODE_B"""
import os
import sys, numpy as np
DIAG = os.environ.get("AVACAST_DIAG_DIR", "runs/diag")  # outputs of these diagnostics

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from identity_diag import frame_metrics, windowed
cid, a, b = sys.argv[1:4]
A, B = np.load(f"{DIAG}/frames/{cid}__{a}.npy"), np.load(f"{DIAG}/frames/{cid}__{b}.npy")
n = min(len(A), len(B))
w = windowed(frame_metrics(A[:n], B[:n]))
print(cid[:30], a, "vs", b, "psnr", ["%.2f" % x for x in w["psnr"]], "face", ["%.2f" % x for x in w["psnr_face"]], "col", ["%.1f" % x for x in w["colour_dist"]])
