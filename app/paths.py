"""Where Avacast keeps user settings and data.

`AVACAST_HOME` overrides both platform directories so tests, the self-test and portable installs
never touch the real user profile.
"""
from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "Avacast"
HOME_ENV = "AVACAST_HOME"


def config_dir() -> Path:
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home) / "config"
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home) / "data"
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def avatars_dir() -> Path:
    return data_dir() / "avatars"


def settings_path() -> Path:
    return config_dir() / "settings.json"


def resources_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "resources"


def default_portrait() -> Path | None:
    """The shipped default portrait, or None when this build has none."""
    path = resources_dir() / "default_portrait.png"
    return path if path.is_file() else None
