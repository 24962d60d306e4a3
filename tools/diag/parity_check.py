"""Does identity_diag's `free` loop reproduce the app path (Session.step/flush via evaluate.render)?"""
import os
import numpy as np, torch, sys
DIAG = os.environ.get("AVACAST_DIAG_DIR", "runs/diag")  # outputs of these diagnostics

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from engine.api import load_engine
from engine.train.evaluate import render
from engine.train.pack import Pack
from engine.config import SAMPLE_RATE, FPS
from identity_diag import N_FRAMES, frame_metrics, windowed
torch.set_num_threads(2)
cid = "LipNet__evaluation_samples_GRID_lbax4n_0000"
eng = load_engine(device="cpu")
p = Pack("/work/packs/shared256")
fr = p.load_frames(cid, 256, 0, N_FRAMES)
au = p.load_audio(cid)[: N_FRAMES * SAMPLE_RATE // FPS]
app = render(eng, [fr[0]], au, 0)[:N_FRAMES]
mine = np.load(f"{DIAG}/frames/{cid}__free.npy")[:N_FRAMES]
print("app frames", app.shape, "max abs diff vs diag free loop", int(np.abs(app.astype(int) - mine.astype(int)).max()))
print("app psnr vs real", ["%.2f" % x for x in windowed(frame_metrics(app, fr))["psnr"]])
