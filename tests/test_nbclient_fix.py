"""tools/nbclient_fix.py: a cell that displays a widget must not stall nbclient for its timeout."""

from __future__ import annotations

import asyncio
import sys
import time
from queue import Empty

import pytest
from _shared import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import nbclient_fix  # noqa: E402


class _LateSocket:
    """A socket whose message arrives at ``arrives`` seconds, but whose first poll misses it
    (wakes only at its timeout): the bug. Later polls see it at once."""

    def __init__(self, arrives: float):
        self.t0, self.arrives, self.polls = time.monotonic(), arrives, 0

    async def poll(self, timeout_ms):
        self.polls += 1
        ready = time.monotonic() - self.t0 >= self.arrives
        if self.polls == 1 or not ready:
            await asyncio.sleep((timeout_ms or 0) / 1000)
            return 0 if self.polls == 1 else int(time.monotonic() - self.t0 >= self.arrives)
        return 1


class _Channel:
    def __init__(self, socket):
        self.socket = socket

    async def _recv(self):
        return {"msg": "reply"}


def test_a_missed_wake_up_costs_a_slice_not_the_timeout():
    from jupyter_client.channels import AsyncZMQSocketChannel

    nbclient_fix.apply()
    nbclient_fix.apply()  # idempotent
    get_msg = AsyncZMQSocketChannel.get_msg
    assert get_msg.polls_in_slices
    start = time.monotonic()
    assert asyncio.run(get_msg(_Channel(_LateSocket(0.1)), timeout=5.0)) == {"msg": "reply"}
    assert time.monotonic() - start < 5.0 / 2  # one slice late at most, not the 5 s timeout
    start = time.monotonic()
    with pytest.raises(Empty):  # no message: Empty after the same timeout as before
        asyncio.run(get_msg(_Channel(_LateSocket(60.0)), timeout=1.2))
    assert 1.1 < time.monotonic() - start < 2.0


def test_the_book_build_applies_it(monkeypatch):
    import book_fixes
    from jupyter_client.channels import AsyncZMQSocketChannel

    async def unpatched(self, timeout=None):  # stands for jupyter_client's own get_msg
        raise Empty

    monkeypatch.setattr(AsyncZMQSocketChannel, "get_msg", unpatched)

    class App:  # what setup() calls on Sphinx's application
        def connect(self, *args, **kwargs): ...
        def add_js_file(self, *args, **kwargs): ...

    book_fixes.setup(App())
    assert AsyncZMQSocketChannel.get_msg.polls_in_slices


def test_a_widget_cell_runs_without_a_stall():
    """The case that stalled (8 of 20 runs without the fix, for the whole timeout): a slider
    over a matplotlib figure. Four runs with a 20 s timeout each finish well within it (without
    the fix, all four would pass by chance 13% of the time)."""
    import nbformat
    from nbclient import NotebookClient

    nbclient_fix.apply()
    cells = ["import ipywidgets as widgets\nimport matplotlib.pyplot as plt\nimport numpy as np",
             # a figure of this size matters: with a 2-inch one of 32 x 32 pixels no stall was seen
             "def show(T=2.27):\n    plt.figure(figsize=(3.5, 3.5))\n"
             "    plt.imshow(np.random.default_rng(0).random((128, 128)))\n"
             "    plt.title(f'T = {T:.2f}')\n    plt.show()\n"
             "widgets.interact(show, T=widgets.FloatSlider(value=2.27, min=1.0, max=4.0, "
             "continuous_update=False));",
             "print('end')"]
    for _ in range(4):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
        start = time.monotonic()
        NotebookClient(nb, timeout=20, kernel_name="python3").execute()
        assert time.monotonic() - start < 15, "a widget cell stalled nbclient"
        assert nb.cells[-1].outputs[0]["text"] == "end\n"


def test_run_as_nbconvert_it_executes_with_the_fix(tmp_path, monkeypatch):
    """tools/binder_check.sh runs ``python tools/nbclient_fix.py`` in place of ``jupyter
    nbconvert``: the fix is applied before nbconvert starts, and the notebook executes."""
    import nbformat
    from jupyter_client.channels import AsyncZMQSocketChannel
    from nbconvert.nbconvertapp import NbConvertApp

    async def unpatched(self, timeout=None):
        raise Empty

    monkeypatch.setattr(AsyncZMQSocketChannel, "get_msg", unpatched)
    seen = {}

    def launch(argv=None):  # stands for nbconvert: records what it would run with
        seen["argv"], seen["patched"] = argv, AsyncZMQSocketChannel.get_msg.polls_in_slices

    monkeypatch.setattr(NbConvertApp, "launch_instance", launch)
    assert nbclient_fix.main(["--to", "notebook", "--execute", "x.ipynb"]) == 0
    assert seen == {"argv": ["--to", "notebook", "--execute", "x.ipynb"], "patched": True}
    monkeypatch.undo()

    script = (ROOT / "tools" / "binder_check.sh").read_text()
    assert '/tools/nbclient_fix.py" --to notebook --execute' in script
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    nbformat.write(nb, tmp_path / "tiny.ipynb")
    import subprocess

    subprocess.run([sys.executable, str(ROOT / "tools" / "nbclient_fix.py"), "--to", "notebook",
                    "--execute", "tiny.ipynb", "--output", "done.ipynb"], cwd=tmp_path, check=True,
                   capture_output=True)
    done = nbformat.read(tmp_path / "done.ipynb", as_version=4)
    assert done.cells[0].outputs[0]["text"] == "42\n"
