"""gan-train commands in processes forked from a server that imported the CLI once.

A console script spends seconds importing torch and Hydra before it reads its command line; a test
that runs dozens of short commands (a run killed at every fault point, then resumed) forks them
instead from a multiprocessing forkserver that has imported gan_cli.cli.train and run nothing.
Each command is a fresh process that calls the console script's main() with its own command line,
working folder and environment, writes its own stdout and stderr, and exits (or is killed, or
kills itself) like the installed command: the same code from sys.argv on.

The commands compute with one thread (torch.set_num_threads(1)): their networks are tiny, and on a
machine shared with other work a second OpenMP thread spinning at every barrier made steps fifty
times slower (2 s instead of 40 ms here).
"""

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

CONTEXT = multiprocessing.get_context("forkserver")
# What every run imports: the CLI, and what it imports only when used (torch.optim's first optimizer
# imports the compiler; PNG writing imports torchvision).
CONTEXT.set_forkserver_preload(["gan_cli.cli.train", "torch._dynamo", "torchvision.utils"])


def run_forked(*args: str, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`gan-train <args>` in a forked process; returns its exit status (-9 when SIGKILLed) and output."""
    out, err = (cwd / f".forked.{os.getpid()}.{name}" for name in ("out", "err"))
    for path in (out, err):
        path.write_text("")
    process = CONTEXT.Process(target=_gan_train, args=(list(args), str(cwd), {**os.environ, **(env or {})}, str(out), str(err)))
    process.start()
    process.join(timeout)
    if process.exitcode is None:
        process.kill()
        process.join()
    stdout, stderr = (path.read_text() for path in (out, err))
    out.unlink()
    err.unlink()
    return subprocess.CompletedProcess(["gan-train", *args], process.exitcode, stdout, stderr)


def _gan_train(args: list[str], cwd: str, env: dict, out: str, err: str) -> None:
    """In the forked process: become `gan-train <args>` started in `cwd` with environment `env`."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    for fd, path in ((1, out), (2, err)):
        os.dup2(os.open(path, os.O_WRONLY), fd)
    sys.stdout.reconfigure(line_buffering=True)  # lines reach the file before a kill can lose them
    sys.stderr.reconfigure(line_buffering=True)
    sys.argv = ["gan-train", *args]
    import torch

    from gan_cli.cli.train import main

    torch.set_num_threads(1)
    main()
