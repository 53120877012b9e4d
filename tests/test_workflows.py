"""The GitHub workflows: linted by zizmor, and consistent with how the project runs.

zizmor (pinned in requirements-test.txt, a binary wheel that works offline)
rejects YAML or schema errors and reports insecure or fragile patterns; the
tests below check what no linter knows: that the workflows run the project's
own entry point in the project's own environment, on the torch versions
``pyproject.toml`` claims.
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import tomllib

import pytest
import yaml
from packaging.requirements import Requirement

from conftest import ROOT, VENV_BIN

WORKFLOWS = ROOT / ".github" / "workflows"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def _steps(workflow: dict):
    for job_id, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, job, step


def _torch_requirement() -> Requirement:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return next(Requirement(d) for d in project["dependencies"] if Requirement(d).name == "torch")


def _pinned_torch() -> str:
    return re.search(r"^torch==(\S+)", (ROOT / "requirements.txt").read_text(), re.M).group(1)


def _zizmor(workflows: pathlib.Path) -> tuple[int, list[dict], str]:
    """zizmor's exit code, findings and log for a folder of workflows, with the project's config."""
    zizmor = shutil.which("zizmor", path=str(VENV_BIN))
    assert zizmor, f"zizmor is not installed in {VENV_BIN} (requirements-test.txt pins it)"
    cmd = [zizmor, "--offline", "--strict-collection", "--no-progress", "--format", "json",
           "--config", str(ROOT / ".github" / "zizmor.yml"), str(workflows)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    findings = json.loads(proc.stdout) if proc.stdout.strip() else []
    return proc.returncode, findings, proc.stderr


def test_zizmor_finds_nothing():
    code, findings, log = _zizmor(WORKFLOWS)
    found = [f"{f['ident']}: {f['desc']} ({f['locations'][0]['symbolic']['key']})"
             for f in findings]
    # 0: no findings; 1: a file it could not read as a workflow; 10-14: findings by severity
    assert code == 0 and not findings, f"zizmor exited {code}:\n" + "\n".join(found) + log


@pytest.mark.parametrize("text, expected", [
    ('on: pull_request\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n'
     '      - run: echo "${{ github.event.pull_request.title }}"\n', "template-injection"),
    ("on: pull_request\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n"
     "      - name: a: b\n        run: true\n", None),  # YAML error: refused outright
], ids=["template-injection", "yaml-error"])
def test_zizmor_rejects_a_bad_workflow(tmp_path, text, expected):
    """The linter is live: the same call rejects what it must (so a clean run means something)."""
    workflows = tmp_path / ".github" / "workflows"  # where zizmor looks for workflows
    workflows.mkdir(parents=True)
    (workflows / "bad.yml").write_text("name: bad\npermissions: {}\n" + text)
    code, findings, log = _zizmor(workflows)
    assert code != 0, log
    if expected:
        assert expected in {f["ident"] for f in findings}, findings
    else:
        assert "invalid YAML syntax" in log, log


@pytest.mark.parametrize("name", ["ci.yml", "deploy.yml"])
def test_github_actions_are_pinned_to_a_major_version(name):
    refs = [step["uses"] for _, _, step in _steps(_load(name)) if "uses" in step]
    assert refs, f"{name}: no actions"
    loose = [ref for ref in refs if not re.fullmatch(r"actions/[\w-]+@v\d+", ref)]
    assert not loose, f"{name}: not a GitHub action at a major version tag: {loose}"


@pytest.mark.parametrize("name", ["ci.yml", "deploy.yml"])
def test_jobs_that_run_make_run_in_debian_bookworm_with_torchs_cpu_index(name):
    """make installs torch (a CUDA build from PyPI on Linux, without the CPU index)
    and, under CI=true, Debian's chromium (apt-get, as root): both need the container."""
    workflow = _load(name)
    jobs = {job_id for job_id, _, step in _steps(workflow)
            if re.search(r"\bmake\b|\.ci/run", step.get("run", ""))}
    assert jobs, f"{name}: no job runs make or .ci/run"
    for job_id in jobs:
        job = workflow["jobs"][job_id]
        container = job.get("container")
        image = container.get("image") if isinstance(container, dict) else container
        where = f"{name}/{job_id}"
        assert image and re.fullmatch(r"python:3\.11-bookworm", image), \
            f"{where}: container {image!r}"
        assert job["env"]["PIP_EXTRA_INDEX_URL"] == CPU_INDEX, f"{where}: no CPU index for torch"


def test_ci_runs_the_one_entry_point_with_ci_true():
    workflow = _load("ci.yml")
    job = workflow["jobs"]["test"]
    assert job["env"]["CI"] == "true"  # the Makefile installs chromium only then
    runs = [step["run"] for _, _, step in _steps(workflow) if "run" in step]
    assert runs == ['bash .ci/run "$SUITE"'], runs
    suites = set(re.findall(r"^\s+(\w+)\)", (ROOT / ".ci" / "run").read_text(), re.M))
    legs = job["strategy"]["matrix"]["include"]
    assert {leg["suite"] for leg in legs} <= suites, (legs, suites)


def test_ci_tests_both_ends_of_the_torch_range():
    """The oldest torch pyproject.toml allows gets everything (it is the book's pin);
    a newer one gets the package tests."""
    requirement, pinned = _torch_requirement(), _pinned_torch()
    lower = [s.version for s in requirement.specifier if s.operator == ">="]
    assert lower and pinned.startswith(lower[0]), (str(requirement), pinned)
    assert requirement.specifier.contains(pinned), (str(requirement), pinned)
    matrix = _load("ci.yml")["jobs"]["test"]["strategy"]["matrix"]["include"]
    legs = {leg["torch"]: leg["suite"] for leg in matrix}
    assert legs.get(pinned) == "all", legs
    newer = [v for v, suite in legs.items() if v != pinned and suite == "package"]
    assert newer and all(requirement.specifier.contains(v) for v in newer), legs
