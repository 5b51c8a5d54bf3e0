"""Documentation stays true: every config key is documented, every column table matches code."""

from __future__ import annotations

import re

import yaml

from conftest import REPO

SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())


def schema_keys(schema: dict, prefix: str = "") -> list[str]:
    keys = []
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        if sub.get("properties"):
            keys += schema_keys(sub, prefix=f"{path}.")
        else:
            keys.append(path)
    return keys


def test_every_config_key_is_documented():
    text = (REPO / "config/README.md").read_text()
    documented = set(re.findall(r"`([a-z0-9_]+(?:\.[a-z0-9_]+)*)`", text))
    missing = [key for key in schema_keys(SCHEMA) if key not in documented]
    assert missing == [], f"config/README.md lacks: {missing}"


def test_documented_keys_exist():
    text = (REPO / "config/README.md").read_text()
    rows = re.findall(r"^\| `([a-z0-9_.]+)`", text, flags=re.M)
    keys = set(schema_keys(SCHEMA))
    assert rows and all(row in keys for row in rows), sorted(set(rows) - keys)
