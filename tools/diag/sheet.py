"""Contact sheet: rows = real / modes, columns = frames at 0, 0.5, 1, 1.5, 2, 2.9 s. Usage: python sheet.py CLIP MODE..."""
import os
import sys, numpy as np, cv2
DIAG = os.environ.get("AVACAST_DIAG_DIR", "runs/diag")  # outputs of these diagnostics

cid, modes = sys.argv[1], sys.argv[2:]
idx = [0, 12, 25, 37, 50, 72]
rows = []
for m in ["real"] + modes:
    a = np.load(f"{DIAG}/frames/{cid}__{m}.npy")
    row = np.concatenate([a[min(i, len(a) - 1)] for i in idx], 1)
    cv2.putText(row, m, (5, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 0), 2)
    rows.append(row)
img = np.concatenate(rows, 0)
img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
cv2.imwrite(f"{DIAG}/sheet_{cid[:20]}.png", img[..., ::-1])
