"""``make lab``: JupyterLab on the book, chapters open as notebooks, a kernel imports lossutils.

The test starts the real target, headless, on a free port with a token of its
own (``LAB_ARGS``), in this test run's environment, asks the Jupyter server's
REST API what a reader's browser would get, and stops it. ``-o`` keeps make
from re-installing the environment: the test checks the lab, not the install
(a fresh clone's ``make lab`` bootstraps ``.venv`` like every other target).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from tornado.websocket import websocket_connect

from conftest import ROOT, VENV_BIN

# What binder/postBuild sets on Binder and `make lab` sets locally.
JUPYTEXT_VIEWERS = {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}


@dataclass
class Lab:
    url: str
    token: str

    def get(self, path: str, method: str = "GET", body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read()
        return json.loads(text) if text else {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lab")
    port, token = _free_port(), uuid.uuid4().hex
    venv = VENV_BIN.parent
    args = (f"--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port={port} "
            f"--ServerApp.port_retries=0 --IdentityProvider.token={token}")
    cmd = ["make", "--no-print-directory", "-o", f"{venv}/.installed", "lab",
           f"VENV={venv}", f"LAB_ARGS={args}"]
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp / "runtime"))  # kernel connection files
    # make lab writes the viewer setting into the venv each time: start without it, so that
    # the test sees this run's (not one left by an earlier run)
    (venv / "share" / "jupyter" / "lab" / "settings" / "overrides.json").unlink(missing_ok=True)
    log_path = tmp / "lab.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    server = Lab(f"http://127.0.0.1:{port}", token)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                server.get("/api/status")
                break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = log_path.read_text()[-3000:]
                    pytest.fail(f"make lab did not serve on port {port}:\n{log}")
                time.sleep(0.5)
        yield server
    finally:
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen) -> None:
    """Stop make and the server it started (its own process group), waiting until all are gone."""
    os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        proc.poll()
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_a_chapter_opens_as_a_notebook(lab):
    model = lab.get("/api/contents/chapters/01_module.md")
    assert model["type"] == "notebook", model
    nb = lab.get("/api/contents/chapters/01_module.md?type=notebook&content=1")["content"]
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert len(code) > 5 and "import lossutils" in code[0]["source"], code[:1]
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


def test_double_clicking_a_chapter_uses_the_jupytext_notebook_viewer(lab):
    settings = lab.get("/lab/api/settings/@jupyterlab/docmanager-extension:plugin")
    assert settings["schema"]["properties"]["defaultViewers"]["default"] == JUPYTEXT_VIEWERS


async def _execute(lab: Lab, kernel_id: str, code: str) -> tuple[str, str]:
    """Run ``code`` in the kernel over the server's websocket: (status, what it printed)."""
    ws_url = (lab.url.replace("http", "ws", 1)
              + f"/api/kernels/{kernel_id}/channels?token={lab.token}")
    ws = await websocket_connect(ws_url)
    msg_id = uuid.uuid4().hex
    ws.write_message(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": uuid.uuid4().hex,
                   "username": "test", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }))
    out = []
    try:
        while True:
            raw = await asyncio.wait_for(ws.read_message(), timeout=120)
            assert raw is not None, "the kernel's websocket closed"
            msg = json.loads(raw)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append("\n".join(msg["content"]["traceback"]))
            elif msg["msg_type"] == "execute_reply":
                return msg["content"]["status"], "".join(out)
    finally:
        ws.close()


def test_the_kernel_imports_lossutils_from_this_repository(lab):
    kernel = lab.get("/api/kernels", method="POST", body={"name": "python3"})
    try:
        code = ("import sys, torch, lossutils, lossutils.functional as LF\n"
                "print(sys.prefix)\nprint(lossutils.__file__)\n"
                "print(float(LF.cross_entropy(torch.zeros(1, 3), torch.tensor([0]))))")
        # a loop of its own, in a thread of its own: an earlier test on this worker
        # (playwright, nbclient) may have left one running in the main thread
        with ThreadPoolExecutor(1) as pool:
            status, out = pool.submit(asyncio.run, _execute(lab, kernel["id"], code)).result()
    finally:
        lab.get(f"/api/kernels/{kernel['id']}", method="DELETE")
    assert status == "ok", out
    prefix, module, loss = out.split()
    assert prefix == str(VENV_BIN.parent)  # the environment make lab runs in
    assert module == str(ROOT / "lossutils" / "__init__.py")
    assert abs(float(loss) - 1.0986123) < 1e-6  # log 3: three equal logits
