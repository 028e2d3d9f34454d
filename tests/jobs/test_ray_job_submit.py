"""`ray job submit` of jobs/tiny_grpo.py to a Ray head this test starts (and stops, by its PID)."""

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from tiny_run import tiny_overrides

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head(tmp_path):
    """A Ray head with the dashboard, token authentication on (Ray's default for local clusters since
    2.59) with a token of its own, so ~/.ray/auth_token of other clusters never matters. Yields the
    dashboard URL and the environment a client needs."""
    gcs, dash = _free_port(), _free_port()
    # Ray's socket paths live under --temp-dir and must stay under 107 bytes (AF_UNIX): pytest's tmp_path
    # can be too deep, so the head gets a short folder of its own under /tmp.
    temp_dir = Path(tempfile.mkdtemp(prefix="rq", dir="/tmp"))
    env = {**os.environ, "RAY_ADDRESS": "", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", f"--port={gcs}", "--num-cpus=2",
         "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
         f"--temp-dir={temp_dir}", "--disable-usage-stats"],
        stdout=open(tmp_path / "head.log", "w"), stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    url = f"http://127.0.0.1:{dash}"
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            listed = subprocess.run([str(BIN / "ray"), "job", "list", "--address", url], capture_output=True,
                                    text=True, env=env)
            if listed.returncode == 0:
                break
            assert head.poll() is None, (tmp_path / "head.log").read_text()
            time.sleep(2)
        else:
            pytest.fail(f"the Ray head's dashboard did not answer within 90 s: {listed.stderr[-2000:]}")
        yield url, env
    finally:
        # Stop only this head: SIGTERM to its --block process (it stops its own children), then its group.
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(head.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_ray_job_submit_runs_the_tiny_job(ray_head, tmp_path):
    url, env = ray_head
    out = tmp_path / "run"
    cmd = [str(BIN / "ray"), "job", "submit", "--address", url, "--working-dir", str(ROOT), "--",
           sys.executable, "jobs/tiny_grpo.py", "--max-steps", "1", "--out", str(out), *tiny_overrides(tmp_path),
           "train.parity_every=0", "train.save_merged=false"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    printed = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)  # Ray colours its console output
    assert re.search(r"Job '\S+' succeeded", printed), printed[-4000:]
    assert (out / "final" / "adapter" / "adapter_config.json").is_file()
    assert (out / "report.md").is_file()
