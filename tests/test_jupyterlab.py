"""Users' view: JupyterLab starts headless (as root, with --allow-root), serves the notebooks, and runs a kernel."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "molesyn-test-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, method: str = "GET") -> tuple[int, bytes]:
    request = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None,
                                     headers={"Content-Type": "application/json", "Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


@pytest.mark.slow
def test_jupyterlab_serves_notebooks_and_starts_a_kernel(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--allow-root", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={ROOT}",
         f"--ServerApp.runtime_dir={tmp_path}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                status, _ = get(f"{base}/lab")
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start within 60 s")
        assert status == 200
        status, body = get(f"{base}/api/contents/notebooks")
        listed = {item["name"] for item in json.loads(body)["content"]}
        assert {p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")} <= listed
        status, body = get(f"{base}/api/contents/notebooks/01_three_bonds.ipynb")
        cells = json.loads(body)["content"]["cells"]
        assert any("parameters" in c["metadata"].get("tags", []) for c in cells)
        status, body = get(f"{base}/api/kernels", method="POST")
        kernel = json.loads(body)
        assert kernel["name"] == "python3"
        for _ in range(60):
            _, body = get(f"{base}/api/kernels/{kernel['id']}")
            if json.loads(body)["execution_state"] in ("idle", "busy"):
                break
            time.sleep(0.5)
        assert json.loads(body)["execution_state"] in ("idle", "busy", "starting")
    finally:
        process.terminate()
        process.wait(timeout=30)
