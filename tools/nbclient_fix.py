"""A workaround for a stall of nbclient on a cell that displays an ipywidget.

nbclient (0.11) waits for a cell's ``execute_reply`` with one ``poll`` of the shell socket
(``jupyter_client``'s ``AsyncZMQSocketChannel.get_msg``) for the whole cell timeout. After a
cell that displays an ipywidget that poll sometimes misses the reply's arrival: the kernel is
idle, the reply is waiting in the client's socket, and the poll returns only when its timeout
runs out (then it finds the reply, and execution goes on as if nothing happened). Reported
upstream as jupyter/nbclient#312 (open). Measured here (2026-12-07, AMD EPYC, ipykernel 7.4.0,
jupyter_client 8.10.0, pyzmq 27.3.0): a notebook whose second cell is an ``interact``
slider over a 3.5-inch matplotlib figure of 128 × 128 pixels stalled in 8 of 20 runs, and in
6 of 10 in a second trial (each time for exactly its 8 s timeout); the same figure without the
widget in 0 of 20, a 2-inch figure of 32 × 32 pixels under the same slider in 0 of 8. Chapter
4's notebook (its lattice slider) stalled for its full 600 s timeout under
``tools/time_notebooks.py``, and for the book's 300 s cell timeout in two earlier builds.

:func:`apply` makes ``get_msg`` poll in slices of ``SLICE_S`` seconds up to the same timeout,
so that a missed wake-up costs at most a slice; with it the first notebook stalled in 0 of 20
runs. It changes nothing else: the same messages, in the same order, the same timeout.
``tools/book_fixes.py`` applies it to the book's build (myst-nb executes the notebooks in the
Sphinx process), ``tools/time_notebooks.py`` to its timings, and ``tools/binder_check.sh`` to
its nbconvert run by running this file in place of ``jupyter nbconvert`` (:func:`main`:
``python tools/nbclient_fix.py --to notebook --execute X.ipynb``). nbval (``make test``) uses
jupyter_client's blocking client, which this bug does not concern.
"""

from __future__ import annotations

import sys
import time
from queue import Empty

SLICE_S = 0.5


def apply() -> None:
    """Patch ``AsyncZMQSocketChannel.get_msg`` to poll in slices (idempotent)."""
    from jupyter_client.channels import AsyncZMQSocketChannel

    if getattr(AsyncZMQSocketChannel.get_msg, "polls_in_slices", False):
        return

    async def get_msg(self, timeout: float | None = None) -> dict:
        """Gets a message if there is one that is ready (polling in slices of SLICE_S s)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = SLICE_S if deadline is None else max(0.0, deadline - time.monotonic())
            if await self.socket.poll(int(1000 * min(SLICE_S, left))):
                return await self._recv()
            if deadline is not None and time.monotonic() >= deadline:
                raise Empty

    get_msg.polls_in_slices = True
    AsyncZMQSocketChannel.get_msg = get_msg


def main(argv: list[str] | None = None) -> int:
    """``jupyter nbconvert`` with the fix applied: ``argv`` are nbconvert's arguments."""
    apply()
    from nbconvert.nbconvertapp import NbConvertApp

    NbConvertApp.launch_instance(argv=sys.argv[1:] if argv is None else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
