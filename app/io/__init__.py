"""Device I/O that the engine may not import: microphone (sounddevice) and virtual camera (pyvirtualcam).

Both libraries import lazily, inside the constructors, so the app and `avacast stream` run without them
and say what to install.
"""
