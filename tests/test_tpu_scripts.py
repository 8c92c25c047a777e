"""The TPU/Colab launch scripts: valid bash, the same `d2ljax train` CLI as everywhere else, and
flags that the CLI really has."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from d2ljax.cli import _parser

TPU = Path(__file__).resolve().parents[1] / "tpu"
SCRIPTS = sorted(TPU.glob("*.sh"))


def test_there_are_scripts_and_a_readme():
    names = {p.name for p in SCRIPTS}
    assert {"colab.sh", "vm_single_host.sh", "pod.sh"} <= names
    readme = (TPU / "README.md").read_text()
    for name in names:
        assert name in readme, f"tpu/README.md does not mention {name}"


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_is_valid_bash_and_calls_d2ljax_train(script):
    out = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    text = script.read_text()
    assert "d2ljax train" in text
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text


def test_scripts_use_only_real_cli_flags():
    train = next(
        a for a in _parser()._subparsers._group_actions[0].choices.items() if a[0] == "train"
    )[1]
    flags = {s for action in train._actions for s in action.option_strings}
    for script in SCRIPTS:
        text = script.read_text().replace("\\\n", " ")
        for line in text.splitlines():
            if "d2ljax train" not in line:
                continue
            used = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", line.split("d2ljax train", 1)[1]))
            assert used <= flags, f"{script.name}: unknown flags {used - flags}"


def test_pod_script_runs_on_every_worker():
    text = (TPU / "pod.sh").read_text()
    assert "--worker=all" in text and "--distributed" in text
    assert "gcloud compute tpus tpu-vm" in text and "create" in text and "delete" in text
