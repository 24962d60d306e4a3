"""Print the `app` extra of pyproject.toml as a requirements file (installed next to the wheel).

The wheel itself declares only the engine's dependencies; the GUI, audio and virtual-camera packages
are the `app` extra. Taking them from pyproject keeps one list for every way of installing.
"""
import sys
import tomllib

with open(sys.argv[1], "rb") as f:
    project = tomllib.load(f)["project"]
print("# The app extra of avacast " + project["version"] + " (generated from pyproject.toml)")
for requirement in project["optional-dependencies"]["app"]:
    print(requirement)
