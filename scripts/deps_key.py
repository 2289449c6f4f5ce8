"""Print a short hash of pyproject.toml's dependency lists (keys the cached virtual environment)."""

import hashlib
import json
from pathlib import Path

import tomllib

project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
deps = {"dependencies": project["dependencies"], "extras": project["optional-dependencies"]}
print(hashlib.sha256(json.dumps(deps, sort_keys=True).encode()).hexdigest()[:12])
