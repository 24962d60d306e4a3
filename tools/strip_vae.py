"""A generator export without its VAE tensors (keeps vae.latent_scale), small enough to come back from a
device call and to serve as the next --init: PYTHONPATH=. python tools/strip_vae.py IN OUT"""
import sys

from engine.io.checkpoint import generator_tensors, load_weights, save_weights

cfg, state, meta = load_weights(sys.argv[1])
state = generator_tensors(state)
extra = {k: v for k, v in meta.items() if k not in ("avacast_config", "avacast_kind")}
print(save_weights(sys.argv[2], state, cfg, kind=meta["avacast_kind"], shard_bytes=15 * 2**20, extra=extra))
