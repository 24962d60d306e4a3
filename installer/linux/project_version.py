"""Print the project version from pyproject.toml (the one source of the version for every package)."""
import sys
import tomllib

with open(sys.argv[1], "rb") as f:
    print(tomllib.load(f)["project"]["version"])
