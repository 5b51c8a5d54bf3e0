"""Documentation stays true: every config key is documented, every column table matches code."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import REPO, make_imagefolder, run_snakemake

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


# ------------------------------------------------------------------ every README command runs


def readme_commands() -> list[str]:
    """Every shell command of README.md's ```bash blocks (continuations joined, comments and
    `&&` split off), in order."""
    commands = []
    text = (REPO / "README.md").read_text()
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"(^|\s)#.*$", "", line).strip()
            commands += [part.strip() for part in line.split("&&") if part.strip()]
    return commands


def _snakemake_words(command: str) -> list[str]:
    words = shlex.split(command)
    assert words[0] in ("snakemake", ".venv/bin/snakemake"), command
    return words[1:]


def _local_cores(words: list[str]) -> list[str]:
    return ["2" if w == "all" and i and words[i - 1] == "--cores" else w
            for i, w in enumerate(words)]  # fmt: skip


@pytest.mark.slow
def test_every_readme_command_runs(test_study, tmp_path):
    """Each command of README.md is run: snakemake commands for real in a copy of the finished
    .test study (with --cores 2), the paper and cluster commands as dry runs, the CLI on small
    stand-ins for its placeholder files. A command no rule below covers fails the test."""
    import shutil

    import torch
    import torchvision

    from helpers import write_probe

    study = tmp_path / "study"
    shutil.copytree(test_study, study, symlinks=True)
    shutil.rmtree(study / ".snakemake/locks", ignore_errors=True)
    home = tmp_path / "home"
    home.mkdir()
    paper = tmp_path / "paper"
    paper.mkdir()
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    covered = []

    def bash(command: str, cwd: Path, **extra) -> subprocess.CompletedProcess:
        proc = subprocess.run(["bash", "-c", command], cwd=cwd, env={**env, **extra},
                              capture_output=True, text=True, timeout=1200)  # fmt: skip
        assert proc.returncode == 0, f"{command}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc

    for command in readme_commands():
        if command == "bash envs/setup.sh":
            bash(command, REPO)  # a no-op once .venv matches the lockfile
        elif command == ".venv/bin/python -m pytest":
            pass  # the test suite this test belongs to
        elif command.startswith("pip install uv"):
            pass  # needs the network (package index); envs/lock.sh is syntax-checked below
        elif command == "bash envs/lock.sh":
            bash("bash -n envs/lock.sh", REPO)
        elif command.startswith("mkdir -p ~/.config/snakemake") or command.startswith("ln -sfn"):
            bash(command, REPO)  # installs the slurm profile into the scratch HOME
        elif command.startswith("ln -s /data/imagenet"):
            make_imagefolder(tmp_path / "imagenet")
            (paper / "resources").mkdir(exist_ok=True)
            bash(command.replace("/data/imagenet", str(tmp_path / "imagenet")), paper)
        elif command.startswith(".venv/bin/prunedissect dissect"):
            scratch = tmp_path / "cli"
            write_probe(scratch / "broden1_224", n_images=4, size=64)
            model = torchvision.models.resnet18(weights=None, num_classes=5)
            torch.save(model.state_dict(), scratch / "model.pt")
            bash(command.replace(".venv/bin/", f"{REPO}/.venv/bin/"), scratch)
            assert (scratch / "dissection/layer4/units.parquet").is_file()
        elif command.startswith(".venv/bin/python -m prunedissect.digests check"):
            # the default study's golden file is checked on the .test study with its own
            golden = str(REPO / ".test/digests.sha256")
            command = command.replace("config/digests/default.sha256", golden)
            bash(command.replace(".venv/bin/", f"{REPO}/.venv/bin/"), study)
        elif command.startswith(".venv/bin/python benchmarks/bench_broden_scale.py"):
            # the paper-scale benchmark, on 6 generated images (3 through the network)
            small = command.replace("--images 10000", "--images 6 --extract-images 3")
            small = small.replace("/tmp/broden_scale", str(tmp_path / "broden_scale"))
            proc = bash(small + " --forward-images 2", REPO)
            assert "(thresholds + tally) / forward" in proc.stdout, proc.stdout
        elif command.startswith(".venv/bin/prunedissect verify"):
            bash(command.replace(".venv/bin/", f"{REPO}/.venv/bin/"), study)
        elif "--profile" in command or "config/paper.yaml" in command:
            words = _snakemake_words(command)
            if "config/paper.yaml" in words:
                words.insert(words.index("--configfile") + 1, str(REPO / "config/paper.yaml"))
                words.remove("config/paper.yaml")
            if "-n" not in words:
                words.append("-n")
            workdir = paper if "config/paper.yaml" in command else study
            proc = run_snakemake("--snakefile", str(REPO / "Snakefile"), "--directory",
                                 str(workdir), *words, env=env)  # fmt: skip
            if "--profile" in words:
                assert "Using profiles slurm and workflow specific profile" in proc.stderr
            if "resources/broden/broden1_224" in words:
                assert "download_broden" in proc.stdout
            elif workdir == paper:  # the whole paper study, GPU requests included
                assert re.search(r"^train_pruned\s+\d+$", proc.stdout, flags=re.M), proc.stdout
        elif command.split()[0] in ("snakemake", ".venv/bin/snakemake"):
            words = _local_cores(_snakemake_words(command))
            # the compare preset's arms are the .test study's: run for real, nothing to redo
            words = [str(REPO / w) if w == "config/compare.yaml" else w for w in words]
            run_snakemake("--snakefile", str(REPO / "Snakefile"), "--directory", str(study),
                          *words, env=env)  # fmt: skip
        else:
            raise AssertionError(f"README command not covered by this test: {command}")
        covered.append(command)
    assert len(covered) >= 15 and "snakemake --unlock" in covered
