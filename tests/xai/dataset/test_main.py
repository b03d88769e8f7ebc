"""xai/dataset/__main__.py: the command line, ``python -m xai.dataset``: two workers write shards that
merge into the single run's file, and bad arguments end with a message, not a traceback."""
import json
import socket
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.xai.dataset.conftest import ENV, same_file
from xai.dataset.__main__ import main
from xai.dataset.explain import explain_dataset
from xai.dataset.store import shard_path


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _run_two_workers(command):
    """Both workers with a fresh pair of ports; again (up to 3 times) where a port was taken between
    free_ports and the workers' bind (another test's processes may open ports meanwhile)."""
    for attempt in range(3):
        cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
        procs = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env={**ENV, "TF_CONFIG": json.dumps({"cluster": cluster,
                                                                       "task": {"type": "worker", "index": i}})})
                 for i in range(2)]
        outs = [p.communicate(timeout=300) for p in procs]
        taken = any(p.returncode != 0 and "already in use" in err.lower() for p, (_, err) in zip(procs, outs))
        if not taken or attempt == 2:
            return procs, outs


@pytest.mark.slow                      # child processes
def test_two_workers_on_the_command_line_write_shards_that_merge_into_the_single_run(tmp_path, saved, model2d, images):
    command = [sys.executable, "-m", "xai.dataset", "--model", str(saved / "model.keras"), "--data",
               str(saved / "x.npy"), "--method", "integrated_gradients", "--option", "steps=8", "--out",
               str(tmp_path / "w.h5"), "--batch-size", "4", "--strategy", "multi-worker", "--no-progress"]
    procs, outs = _run_two_workers(command)
    for p, (_, stderr) in zip(procs, outs):
        assert p.returncode == 0, stderr[-3000:]
    shards = [shard_path(str(tmp_path / "w.h5"), i, 2) for i in range(2)]
    assert [o[0].strip().splitlines()[-1] for o in outs] == shards
    assert main(["merge", "--out", str(tmp_path / "merged.h5")] + shards) == 0
    single = explain_dataset(model2d, images, "integrated_gradients", tmp_path / "one.h5", batch_size=4,
                                progress=False, steps=8)
    same_file(tmp_path / "merged.h5", single)
    help_text = subprocess.run([sys.executable, "-m", "xai.dataset", "--help"], cwd=ROOT, env=ENV,
                               capture_output=True, text=True)
    assert help_text.returncode == 0 and "--method" in help_text.stdout and "merge" in help_text.stdout


@pytest.mark.slow                      # child processes
def test_command_line_errors_end_with_a_message_not_a_traceback(tmp_path, saved):
    base = ["--model", str(saved / "model.keras"), "--data", str(saved / "x.npy"), "--out", str(tmp_path / "c.h5")]
    for extra, message in ((["--method", "grad_cam", "--shard", "5/4"], "0 <= I < N"),
                           (["--method", "grad_cam", "--class-index", "foo"], "--class-index"),
                           (["--method", "nope"], "--method must be one of"),
                           (["--method", "grad_cam", "--option", "bogus=3"], "unknown option")):
        run = subprocess.run([sys.executable, "-m", "xai.dataset"] + base + extra, cwd=ROOT, env=ENV,
                             capture_output=True, text=True)
        assert run.returncode == 2 and message in run.stderr, (extra, run.stderr[-500:])
        assert "Traceback" not in run.stderr
