"""Start ``P`` processes of one training script on this machine, as a cluster would start them on
``P`` machines, and fail fast when one of them fails.

``python -m reclib.training.launch --nproc 2 -- python train.py --epochs 3`` (or
:func:`launch` from Python) starts the command ``P`` times with, for process ``r``:

- ``KERAS_DISTRIBUTION_JOB_ADDRESSES=127.0.0.1:PORT`` (process 0 coordinates),
  ``KERAS_DISTRIBUTION_NUM_PROCESSES=P``, ``KERAS_DISTRIBUTION_PROCESS_ID=r``: what
  ``keras.distribution.initialize`` reads (:func:`reclib.training.processes.initialize_processes`);
- ``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``: the same facts under
  the names ``torchrun`` uses, for ``torch.distributed``.

On a cluster nothing here is needed: the scheduler starts one process per machine and sets the
same variables (the README shows SLURM and Kubernetes). The launcher waits for every process;
when one exits with an error it stops the others at once (a process whose peer died would
otherwise wait in a collective) and raises :class:`WorkerFailed` naming the rank, its exit code
and the last line it wrote to stderr; after ``timeout`` seconds (if given) it stops them all and
raises ``TimeoutError``. It imports neither Keras nor JAX.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence

from reclib.checks import ParameterTypeError, check_bool, check_positive, check_positive_int

__all__ = ["WorkerFailed", "free_ports", "launch", "process_environment"]


class WorkerFailed(RuntimeError):
    """A launched process exited with an error: ``rank``, ``returncode`` and its ``stderr``."""

    def __init__(self, rank: int, returncode: int, stderr: str, count: int) -> None:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        cause = lines[-1].strip() if lines else "(no output on stderr)"
        super().__init__(f"process rank {rank} of {count} failed with exit code {returncode}: {cause}")
        self.rank, self.returncode, self.stderr = rank, returncode, stderr


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on the loopback interface right now (all bound to port 0 at
    once, then released; another program could take one before it is used, which then fails
    naming the address)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def process_environment(rank: int, count: int, coordinator: str) -> dict[str, str]:
    """The variables of process ``rank`` of ``count`` (module doc); ``coordinator`` is
    ``host:port`` of process 0."""
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"coordinator must be host:port, got {coordinator!r}")
    return {"KERAS_DISTRIBUTION_JOB_ADDRESSES": coordinator, "KERAS_DISTRIBUTION_NUM_PROCESSES": str(count),
            "KERAS_DISTRIBUTION_PROCESS_ID": str(rank), "MASTER_ADDR": host, "MASTER_PORT": port,
            "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(count)}


def _stop(processes: Sequence[subprocess.Popen]) -> None:
    """Kill every process still running with its whole process group (a wrapper's children too)."""
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
    for process in processes:
        process.wait()


def _check_launch(command: object, nproc: object, timeout: object, pin_cores: object) -> None:
    if isinstance(command, str) or not command or not all(isinstance(part, str) for part in command):
        raise ParameterTypeError(f"command must be a non-empty list of strings (program, arguments), got {command!r}")
    check_positive_int(nproc=nproc)
    if timeout is not None:
        check_positive(timeout=timeout)
    check_bool(pin_cores=pin_cores)
    if pin_cores and not hasattr(os, "sched_setaffinity"):
        raise ValueError("pin_cores=True needs os.sched_setaffinity (Linux)")
    if pin_cores and nproc > len(os.sched_getaffinity(0)):
        raise ValueError(f"pin_cores=True needs a core per process: nproc={nproc}, "
                         f"{len(os.sched_getaffinity(0))} cores available")


def launch(command: Sequence[str], nproc: int, timeout: float | None = None, env: Mapping[str, str] | None = None,
           pin_cores: bool = False) -> list[str]:
    """Run ``command`` (a list: program and arguments) as ``nproc`` processes of one run (module
    doc) and return each rank's standard output, in rank order. ``env`` adds variables to this
    process's environment for all of them. ``pin_cores=True`` (Linux) keeps rank ``r`` on CPU core
    ``r`` alone, as if each process had a one-core machine (for timing; needs ``nproc`` cores).

    Raises :class:`WorkerFailed` for the *first* process to exit with an error (the others are
    then killed, with their process groups: a peer of a dead process often fails a moment later
    with a connection error, which is not the cause), ``TimeoutError`` after ``timeout`` seconds
    (``None``: no limit)."""
    _check_launch(command, nproc, timeout, pin_cores)
    coordinator = f"127.0.0.1:{free_ports(1)[0]}"
    exits: queue.Queue[int] = queue.Queue()            # ranks in the order their processes end
    with tempfile.TemporaryDirectory(prefix="reclib-launch-") as folder:
        processes, outputs = [], []
        try:
            for rank in range(nproc):
                out = open(os.path.join(folder, f"{rank}.out"), "w+")
                err = open(os.path.join(folder, f"{rank}.err"), "w+")
                outputs.append((out, err))
                variables = {**os.environ, **(env or {}), **process_environment(rank, nproc, coordinator)}
                process = subprocess.Popen(list(command), env=variables, stdout=out, stderr=err,
                                           stdin=subprocess.DEVNULL, start_new_session=True)
                processes.append(process)
                if pin_cores:               # set from here (no pre-exec hook in a threaded parent)
                    os.sched_setaffinity(process.pid, {sorted(os.sched_getaffinity(0))[rank]})
                threading.Thread(target=lambda p=process, r=rank: (p.wait(), exits.put(r)), daemon=True).start()
            deadline = None if timeout is None else time.monotonic() + timeout
            for _ in range(nproc):
                try:
                    rank = exits.get(timeout=None if deadline is None else max(deadline - time.monotonic(), 0.0))
                except queue.Empty:
                    running = [r for r, process in enumerate(processes) if process.poll() is None]
                    _stop(processes)
                    raise TimeoutError(f"processes {running} of {nproc} still ran after {timeout:g} s; "
                                       f"all stopped") from None
                if processes[rank].returncode != 0:
                    _stop(processes)
                    outputs[rank][1].seek(0)
                    raise WorkerFailed(rank, processes[rank].returncode, outputs[rank][1].read(), nproc)
            texts = []
            for out, _ in outputs:
                out.seek(0)
                texts.append(out.read())
            return texts
        finally:
            _stop(processes)
            for out, err in outputs:
                out.close()
                err.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m reclib.training.launch --nproc P [--timeout S] -- COMMAND ...``: run, then print
    each rank's output after a ``[rank r]`` header; exit 1 with the failure on stderr."""
    parser = argparse.ArgumentParser(prog="python -m reclib.training.launch", description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, required=True, help="number of processes")
    parser.add_argument("--timeout", type=float, default=None, help="seconds before every process is stopped "
                        "(default: no limit)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the program and its arguments")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    try:
        texts = launch(command, args.nproc, args.timeout)
    except (WorkerFailed, TimeoutError, ValueError, ParameterTypeError, OSError) as error:
        print(f"launch: {error}", file=sys.stderr)
        return 1
    for rank, text in enumerate(texts):
        print(f"[rank {rank}]\n{text}", end="" if text.endswith("\n") else "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
