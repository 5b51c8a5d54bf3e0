"""The `slurm` profile, checked by dry runs and against a real single-node Slurm cluster.

The dry-run tests need no cluster. The others start Slurm on this machine (tests/slurm/*.sh:
slurmctld and slurmd on this host, partitions `cpu` and `gpu`, two placeholder GPUs that Slurm
schedules but that have no device behind them), install profiles/slurm as the profile named
`slurm` in a temporary XDG_CONFIG_HOME the way profiles/README.md says, and run the users' command
`snakemake --profile slurm --cores 2` on the .test study, shrunk to one trial and one pruning
level to fit the time budget (every rule still runs). That run is interrupted twice: the dense
training job is cancelled (the profile's retries resubmit it), later, while level 1 trains, the
Snakemake process is killed together with every job on the node (a node failure that also takes
down the login session); a second run of the same command finishes the study. The tests then
check Slurm's own record of every job, the submitted sbatch lines, the retry, the kept levels,
and that the tables equal those of a local run.

Without root or Debian packages the cluster cannot start: the tests skip saying why, except
under CI=true, where they fail.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, make_imagefolder, run_snakemake

SLURM_SCRIPTS = REPO / "tests" / "slurm"
PROFILE = REPO / "profiles" / "slurm" / "config.v8+.yaml"
WORKFLOW_PROFILE = REPO / "profiles" / "default" / "config.v8+.yaml"
GPU_RULES = {"train_dense", "train_pruned", "extract_activations", "speed"}
GPU_MODEL = "testgpu"  # the GRES type tests/slurm/start.sh gives the placeholder GPUs
CORES = 2
RUN_TIMEOUT_S = 1500
# The Slurm study's two interruptions: this job is cancelled once (its retry must succeed) ...
RETRIED = ("train_dense", "0")
# ... and while this one runs, Snakemake and every job on the node are killed.
INTERRUPTED = ("train_pruned", "lottery_0_1")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def cannot_run(reason: str):
    """Skip where Slurm cannot be started here, but never in CI: there it must run."""
    if in_ci():
        pytest.fail(f"CI=true but the Slurm test cannot run: {reason}")
    pytest.skip(reason)


# ---------------------------------------------------------------------------------------------
# Helpers: installing the profile, running Snakemake, reading Slurm's records


def install_profile(config_home: Path, **site: str) -> Path:
    """Copy profiles/slurm to CONFIG_HOME/snakemake/slurm and fill in the EDIT values.

    ``site`` maps account / cpu / gpu / gpu_model to the values a user would type; an account of
    None deletes the slurm_account line (a cluster without accounts), as profiles/README.md says.
    """
    target = config_home / "snakemake" / "slurm"
    shutil.copytree(PROFILE.parent, target)
    text = PROFILE.read_text()
    edits = [
        (r'"EDIT-cpu-partition"', f'"{site["cpu"]}"'),
        (r'"EDIT-gpu-partition"', f'"{site["gpu"]}"'),
        (r'# gpu_model: "a100"', f'gpu_model: "{site["gpu_model"]}"'),
    ]
    if site.get("account") is None:
        edits.append((r'\n *slurm_account: "EDIT-account".*', ""))
    else:
        edits.append((r'"EDIT-account"', f'"{site["account"]}"'))
    for pattern, value in edits:
        text, count = re.subn(pattern, value, text)
        assert count >= 1, f"profiles/slurm lost its placeholder {pattern!r}"
    (target / PROFILE.name).write_text(text)
    return target


def study_dir(root: Path) -> Path:
    """A working directory holding the .test config, shrunk to one trial, one pruned level and
    two methods (a chained and an independent kind)."""
    config = yaml.safe_load((REPO / ".test/config/config.yaml").read_text())
    config["methods"] = [m for m in config["methods"] if m["kind"] in ("lottery", "oneshot")]
    config["trials"] = 1
    config["pruning"]["levels"] = 1
    config.setdefault("report", {}).update(trial=0, levels=None)
    config.get("dissection", {}).pop("levels", None)
    (root / "config").mkdir(parents=True)
    (root / "config/config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def clean_env(home: Path, config_home: Path) -> dict[str, str]:
    """The environment of a user whose home and config directory are the temporary ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SNAKEMAKE_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(config_home), PYTHONHASHSEED="0")
    return env


def slurm_command(workdir: Path, *extra: str) -> list[str]:
    """The users' command plus the test cluster's settings (no accounting database: squeue)."""
    cluster_settings = "--slurm-status-command squeue --slurm-init-seconds-before-status-checks 1"
    return [
        *(sys.executable, "-m", "snakemake", "--profile", "slurm", "--cores", str(CORES)),
        *("--directory", str(workdir), *cluster_settings.split(), "--verbose", *extra),
    ]


@dataclass(frozen=True)
class SlurmJob:
    """One Slurm job as slurmctld recorded it."""

    job_id: str
    rule: str
    wildcards: str
    state: str
    partition: str
    tres_per_job: str


def split_comment(comment: str) -> tuple[str, str]:
    """The plugin's job comment ``rule_<rule>[_wildcards_<v1_v2>]`` as (rule, wildcards)."""
    assert comment.startswith("rule_"), comment
    rule, _, wildcards = comment[len("rule_") :].partition("_wildcards_")
    return rule, wildcards


def show_job(job_id: str) -> SlurmJob:
    """slurmctld's record of one job (kept MinJobAge = 1 h after it ends, see start.sh)."""
    out = subprocess.run(
        ["scontrol", "show", "job", "--oneliner", job_id],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fields = dict(item.split("=", 1) for item in out.split() if "=" in item)
    rule, wildcards = split_comment(fields["Comment"])
    return SlurmJob(
        job_id=job_id,
        rule=rule,
        wildcards=wildcards,
        state=fields["JobState"],
        partition=fields["Partition"],
        tres_per_job=fields.get("TresPerJob", ""),
    )


SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.")


def submitted_ids(output: str) -> list[str]:
    return [m.group(1) for m in SUBMITTED.finditer(output)]


def sbatch_lines(output: str) -> list[str]:
    return [
        line.split("sbatch call: ", 1)[1] for line in output.splitlines() if "sbatch call: " in line
    ]


def executed_rules(output: str) -> list[tuple[str, str]]:
    """(rule or localrule, rule name) for every job block Snakemake printed."""
    return re.findall(r"^(rule|localrule) (\w+):$", output, flags=re.M)


def dag_jobs(output: str) -> set[tuple[str, str]]:
    """(rule, wildcard values joined by _) of every job a (local) run printed, `all` excluded."""
    jobs = set()
    for block in re.split(r"\n(?=\[[A-Z][a-z]{2} )", output):
        m = re.search(r"^(?:local)?rule (\w+):$", block, flags=re.M)
        if not m or m.group(1) == "all":
            continue
        wc = re.search(r"^\s+wildcards: (.*)$", block, flags=re.M)
        values = [kv.split("=", 1)[1] for kv in wc.group(1).split(", ")] if wc else []
        jobs.add((m.group(1), "_".join(values)))
    return jobs


def file_state(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def queued_jobs() -> list[tuple[str, str, str]]:
    """(job id, state, comment) of every job slurmctld still knows."""
    out = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%i|%T|%k"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [tuple(line.split("|", 2)) for line in out.splitlines() if line.strip()]


def cancel_all_jobs(settle_s: float = 3.0, timeout_s: float = 60.0) -> None:
    """Cancel every queued or running job until none has shown up for ``settle_s`` seconds
    (an sbatch started by a killed Snakemake can still land a job after the first sweep)."""
    quiet_since = time.monotonic()
    deadline = quiet_since + timeout_s
    while time.monotonic() < deadline:
        active = [
            j for j, state, _ in queued_jobs() if state in {"PENDING", "RUNNING", "COMPLETING"}
        ]
        if active:
            subprocess.run(["scancel", *active], check=False)
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= settle_s:
            return
        time.sleep(0.5)
    raise AssertionError(f"jobs still active after {timeout_s} s: {queued_jobs()}")


def running_job(comment: str) -> str | None:
    for job_id, state, job_comment in queued_jobs():
        if state == "RUNNING" and job_comment == comment:
            return job_id
    return None


# ---------------------------------------------------------------------------------------------
# Dry runs: no cluster needed


def test_workflow_profile_leaves_the_cluster_keys_alone():
    """profiles/default is applied after --profile slurm and would replace any key both set."""
    default = yaml.safe_load(WORKFLOW_PROFILE.read_text())
    slurm = yaml.safe_load(PROFILE.read_text())
    assert not set(default) & set(slurm), set(default) & set(slurm)
    assert "default-resources" not in default and "set-resources" not in default
    assert slurm["executor"] == "slurm"
    assert all("slurm_extra" not in str(v) for v in slurm["set-resources"].values())


def resources_by_rule(output: str) -> dict[str, list[dict[str, str]]]:
    """Every submitted (non-local) job's printed ``resources:`` line, parsed, grouped by rule."""
    found: dict[str, list[dict[str, str]]] = {}
    for block in re.split(r"\n(?=\[[A-Z][a-z]{2} )", output):
        m = re.search(r"^rule (\w+):$", block, flags=re.M)
        res = re.search(r"^\s+resources: (.*)$", block, flags=re.M)
        if m and res:
            pairs = dict(kv.split("=", 1) for kv in res.group(1).split(", "))
            found.setdefault(m.group(1), []).append(pairs)
    return found


@pytest.fixture(scope="module")
def paper_dry_run(tmp_path_factory) -> dict[str, list[dict[str, str]]]:
    """`snakemake --profile profiles/slurm -n` on config/paper.yaml (ImageNet path faked)."""
    tmp = tmp_path_factory.mktemp("paper")
    make_imagefolder(tmp / "imagenet")
    (tmp / "override.yaml").write_text(yaml.safe_dump({"dataset": {"path": str(tmp / "imagenet")}}))
    configfiles = (str(REPO / "config/paper.yaml"), str(tmp / "override.yaml"))
    proc = run_snakemake(
        *("--profile", "profiles/slurm", "-n", "--cores", "64", "--configfile", *configfiles),
        *("--directory", str(tmp / "work")),
        env=clean_env(tmp, tmp / "xdg"),
    )
    return resources_by_rule(proc.stdout + proc.stderr)


def test_paper_preset_dry_run_sends_gpu_rules_to_the_gpu_partition(paper_dry_run):
    assert GPU_RULES <= set(paper_dry_run)
    for rule, jobs in paper_dry_run.items():
        for res in jobs:
            if rule in GPU_RULES:
                assert res.get("gpu") == "1", (rule, res)
                assert res.get("slurm_partition") == "EDIT-gpu-partition", (rule, res)
            else:
                assert res.get("gpu", "0") == "0" and "gres" not in res, (rule, res)
                assert res.get("slurm_partition") == "EDIT-cpu-partition", (rule, res)
            assert res.get("slurm_account") == "EDIT-account", (rule, res)


def test_paper_preset_asks_for_enough_time_and_memory(paper_dry_run):
    """90 ImageNet epochs of ResNet-50 on one GPU take well over a day; 2 h would time out."""
    for rule in ("train_dense", "train_pruned"):
        for res in paper_dry_run[rule]:
            assert 24 * 60 <= int(res["runtime"]) <= 7 * 24 * 60, (rule, res)
            assert int(res["mem_mb"]) >= 16000, (rule, res)


def test_documented_install_finds_the_profile_by_name(tmp_path):
    """The README's install line, then the users' command with the profile named `slurm`."""
    home = tmp_path / "home"
    home.mkdir()
    readme = (REPO / "profiles/README.md").read_text()
    install = re.search(r"^\s*(mkdir -p ~/\.config/snakemake && ln -sfn .*)$", readme, flags=re.M)
    assert install, "profiles/README.md lost its install command"
    env = {k: v for k, v in clean_env(home, home / ".config").items() if k != "XDG_CONFIG_HOME"}
    subprocess.run(["bash", "-c", install.group(1)], cwd=REPO, env=env, check=True)
    assert (home / ".config/snakemake/slurm").resolve() == PROFILE.parent
    workdir = study_dir(tmp_path / "work")
    proc = run_snakemake(
        "--profile", "slurm", "-n", "--cores", "64", "--directory", str(workdir), env=env
    )
    output = proc.stdout + proc.stderr
    assert "Using profiles slurm and workflow specific profile profiles/default" in output
    jobs = resources_by_rule(output)
    assert all(r["slurm_partition"] == "EDIT-gpu-partition" for r in jobs["train_pruned"])
    assert all(r["slurm_partition"] == "EDIT-cpu-partition" for r in jobs["tally_iou"])


# ---------------------------------------------------------------------------------------------
# A real single-node Slurm


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """Install (if needed) and start the single-node cluster; stop it afterwards."""
    lock = open("/tmp/prunedissect-slurm-test.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)  # one test cluster per machine at a time
    state = tmp_path_factory.mktemp("slurm-state")
    try:
        install = subprocess.run(
            ["bash", str(SLURM_SCRIPTS / "install.sh")], capture_output=True, text=True, timeout=900
        )
        if install.returncode != 0:
            cannot_run(
                f"tests/slurm/install.sh failed: {install.stdout[-2000:]}{install.stderr[-2000:]}"
            )
        start = subprocess.run(
            ["bash", str(SLURM_SCRIPTS / "start.sh"), str(state)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if start.returncode != 0:
            cannot_run(f"tests/slurm/start.sh failed: {start.stdout[-2000:]}{start.stderr[-4000:]}")
        yield state
    finally:
        subprocess.run(["bash", str(SLURM_SCRIPTS / "stop.sh"), str(state)], timeout=300)
        lock.close()


@pytest.mark.slurm
def test_cluster_schedules_gpu_requests_on_the_gpu_partition(slurm_cluster, tmp_path):
    """The harness itself: a --gpus job is accepted, gets a GPU index, a CPU job gets none."""
    for partition, gpus, name in (("gpu", f"--gpus={GPU_MODEL}:1", "g"), ("cpu", None, "c")):
        out = tmp_path / f"{name}.out"
        cmd = ["sbatch", "--parsable", "--wait", "-p", partition, "-t", "2", "--mem", "100"]
        cmd += ["-o", str(out), "--wrap", 'echo "gpus=${CUDA_VISIBLE_DEVICES:-none}"']
        if gpus:
            cmd.insert(1, gpus)
        job_id = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120).stdout
        job_id = job_id.strip().split(";")[0]
        shown = subprocess.run(
            ["scontrol", "show", "job", "--oneliner", job_id], capture_output=True, text=True
        ).stdout
        assert "JobState=COMPLETED" in shown and f"Partition={partition}" in shown, shown
        if gpus:
            assert f"TresPerJob=gres:gpu:{GPU_MODEL}:1" in shown, shown
            assert re.fullmatch(r"gpus=[01]\n", out.read_text()), out.read_text()
        else:
            assert "TresPerJob" not in shown, shown
            assert out.read_text() == "gpus=none\n"


@dataclass
class StudyRuns:
    """What the interrupted Slurm run, its rerun and the local reference left behind."""

    slurm_dir: Path
    local_dir: Path
    first: str  # output of the interrupted run
    second: str  # output of the rerun
    local: str  # output of the local run
    first_jobs: list[SlurmJob]
    second_jobs: list[SlurmJob]
    cancelled_job: str  # the training job cancelled to exercise the retry
    kept_models: dict[Path, tuple[str, int]]  # models finished before the node failure
    finished_before: set[tuple[str, str]]  # training jobs that completed in the first run


def comment(job: tuple[str, str]) -> str:
    """The plugin's Slurm job comment for (rule, wildcards)."""
    return f"rule_{job[0]}_wildcards_{job[1]}" if job[1] else f"rule_{job[0]}"


def drive_first_run(command, env, log_path: Path) -> tuple[str, str]:
    """Run until INTERRUPTED runs: cancel RETRIED once on the way (a job killed), then kill
    Snakemake and every job on the node (a node failure that takes the login session along)."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        cancelled = None
        interrupted = False
        deadline = time.monotonic() + RUN_TIMEOUT_S
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                if cancelled is None and (job := running_job(comment(RETRIED))):
                    subprocess.run(["scancel", job], check=True)
                    cancelled = job
                if cancelled and running_job(comment(INTERRUPTED)):
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    interrupted = True
                    break
                time.sleep(0.5)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            cancel_all_jobs()
    output = log_path.read_text()
    assert cancelled is not None, f"{RETRIED} never ran:\n{output[-6000:]}"
    assert interrupted, f"the run ended before {INTERRUPTED} ran:\n{output[-6000:]}"
    return output, cancelled


@pytest.fixture(scope="module")
def study_runs(slurm_cluster, tmp_path_factory) -> StudyRuns:
    """The interrupted Slurm run and its rerun (the users' command), and a local reference run."""
    tmp = tmp_path_factory.mktemp("study")
    home = tmp / "home"
    home.mkdir()
    config_home = tmp / "xdg"
    install_profile(config_home, account=None, cpu="cpu", gpu="gpu", gpu_model=GPU_MODEL)
    env = clean_env(home, config_home)
    slurm_dir = study_dir(tmp / "slurm")
    local_dir = study_dir(tmp / "local")

    # The local reference runs meanwhile: the Slurm run mostly waits on polling and job starts.
    local_log = tmp / "local.log"
    with open(local_log, "w") as log:
        local = subprocess.Popen(  # at low priority: the Slurm run's critical path goes first
            ["nice", "-n", "19", *(sys.executable, "-m", "snakemake", "--cores", str(CORES))]
            + ["--directory", str(local_dir)],
            cwd=REPO,
            env=clean_env(home, tmp / "xdg-local"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    finished = False
    try:
        command = slurm_command(slurm_dir)
        first, cancelled = drive_first_run(command, env, tmp / "first.log")
        first_jobs = [show_job(job_id) for job_id in submitted_ids(first)]
        finished_before = {
            (job.rule, job.wildcards)
            for job in first_jobs
            if job.rule.startswith("train_") and job.state == "COMPLETED"
        }
        kept_models = {}
        for rule, wildcards in finished_before:
            if rule == "train_dense":
                method, trial, level = "dense", wildcards, "0"
            else:
                method, trial, level = wildcards.split("_")
            model = slurm_dir / f"results/train/{method}/trial{trial}/level{level}/model.pt"
            kept_models[model] = file_state(model)

        unlock = subprocess.run(
            command + ["--unlock"], cwd=REPO, env=env, capture_output=True, text=True
        )
        assert unlock.returncode == 0, unlock.stdout + unlock.stderr
        second = subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
        )
        second_output = second.stdout + second.stderr
        assert second.returncode == 0, second_output[-8000:]
        second_jobs = [show_job(job_id) for job_id in submitted_ids(second_output)]
        finished = True
    finally:
        if not finished:
            local.kill()
        local_rc = local.wait(timeout=RUN_TIMEOUT_S)
    local_output = local_log.read_text()
    assert local_rc == 0, local_output[-8000:]
    return StudyRuns(
        slurm_dir=slurm_dir,
        local_dir=local_dir,
        first=first,
        second=second_output,
        local=local_output,
        first_jobs=first_jobs,
        second_jobs=second_jobs,
        cancelled_job=cancelled,
        kept_models=kept_models,
        finished_before=finished_before,
    )


@pytest.mark.slurm
@pytest.mark.slow
def test_every_job_went_through_sbatch(study_runs):
    runs = study_runs
    for output in (runs.first, runs.second):
        assert "Using profiles slurm and workflow specific profile profiles/default" in output
        local_jobs = [name for kind, name in executed_rules(output) if kind == "localrule"]
        assert set(local_jobs) <= {"all"}, local_jobs
    completed = {
        (job.rule, job.wildcards)
        for job in runs.first_jobs + runs.second_jobs
        if job.state == "COMPLETED"
    }
    expected = dag_jobs(runs.local)
    assert len(expected) > 15 and {rule for rule, _ in expected} >= GPU_RULES | {"tally_iou"}
    assert completed == expected
    for job in runs.first_jobs + runs.second_jobs:
        assert job.state in {"COMPLETED", "CANCELLED"}, job


@pytest.mark.slurm
@pytest.mark.slow
def test_gpu_rules_ask_for_a_gpu_and_cpu_rules_do_not(study_runs):
    runs = study_runs
    lines = sbatch_lines(runs.first) + sbatch_lines(runs.second)
    # (the killed run may have called sbatch once more without living to report the job id)
    assert len(lines) >= len(runs.first_jobs) + len(runs.second_jobs) > 0
    for line in lines:
        rule, _ = split_comment(re.search(r"--comment (\S+)", line).group(1))
        gpu_options = re.findall(r"--(?:gpus|gres)\S*", line)
        if rule in GPU_RULES:
            assert gpu_options == [f"--gpus={GPU_MODEL}:1"], line
            assert " -p gpu " in line, line
        else:
            assert gpu_options == [], line
            assert " -p cpu " in line, line
        assert "slurm_extra" not in line
    # Slurm's side: what it accepted and scheduled.
    for job in runs.first_jobs + runs.second_jobs:
        if job.rule in GPU_RULES:
            assert (job.partition, job.tres_per_job) == ("gpu", f"gres:gpu:{GPU_MODEL}:1"), job
        else:
            assert (job.partition, job.tres_per_job) == ("cpu", ""), job


@pytest.mark.slurm
@pytest.mark.slow
def test_results_equal_a_local_run(study_runs):
    slurm_results = study_runs.slurm_dir / "results"
    local_results = study_runs.local_dir / "results"
    tables = sorted(p.relative_to(local_results) for p in local_results.rglob("*.parquet"))
    assert len(tables) >= 10 and Path("tables/units.parquet") in tables
    assert tables == sorted(p.relative_to(slurm_results) for p in slurm_results.rglob("*.parquet"))
    # inference timings differ between any two runs (prunedissect.speed); everything else is equal
    for table in (t for t in tables if t != Path("tables/speed.parquet")):
        pd.testing.assert_frame_equal(
            pd.read_parquet(slurm_results / table),
            pd.read_parquet(local_results / table),
            check_exact=True,
        )
    for model in local_results.rglob("model.pt"):
        relative = model.relative_to(local_results)
        assert model.read_bytes() == (slurm_results / relative).read_bytes(), relative


@pytest.mark.slurm
@pytest.mark.slow
def test_failed_job_is_retried_and_its_slurm_log_is_shown(study_runs):
    runs = study_runs
    attempts = [j for j in runs.first_jobs + runs.second_jobs if (j.rule, j.wildcards) == RETRIED]
    assert [j.state for j in attempts] == ["CANCELLED", "COMPLETED"], attempts
    assert attempts[0].job_id == runs.cancelled_job
    # The error names the cancelled job's Slurm log, which is kept and says what happened.
    error = runs.first[runs.first.index(f"Error in rule {RETRIED[0]}:") :]
    rule, wildcards = RETRIED
    log = re.search(rf"log: .*?(\S+/slurm_logs/rule_{rule}/{wildcards}/(\d+)\.log)", error)
    assert log and log.group(2) == runs.cancelled_job, error[:2000]
    assert f"JOB {runs.cancelled_job} ON " in Path(log.group(1)).read_text()
    assert "CANCELLED" in Path(log.group(1)).read_text()
    assert "Trying to restart job" in runs.first


@pytest.mark.slurm
@pytest.mark.slow
def test_rerun_after_node_failure_keeps_finished_levels(study_runs):
    runs = study_runs
    assert RETRIED in runs.finished_before and INTERRUPTED not in runs.finished_before
    assert runs.kept_models
    for model, before in runs.kept_models.items():
        assert file_state(model) == before, f"{model} was retrained"
    rerun = {(j.rule, j.wildcards) for j in runs.second_jobs}
    assert not rerun & runs.finished_before, rerun & runs.finished_before
    assert INTERRUPTED in rerun
