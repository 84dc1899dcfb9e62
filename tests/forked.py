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
import time
from pathlib import Path

CONTEXT = multiprocessing.get_context("forkserver")
# What every run imports: the CLI, and what it imports only when used (torch.optim's first optimizer
# imports the compiler; PNG writing imports torchvision).
CONTEXT.set_forkserver_preload(["gan_cli.cli.train", "torch._dynamo", "torchvision.utils"])


def run_forked(*args: str, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`gan-train <args>` in a forked process; returns its exit status (-9 when SIGKILLed) and output."""
    return ForkedCommand(*args, cwd=cwd, env=env).finish(timeout)


class ForkedCommand:
    """`gan-train <args>` running in a forked process, for tests that signal it while it trains."""

    def __init__(self, *args: str, cwd: Path, env: dict | None = None):
        self.args = args
        self.out, self.err = (cwd / f".forked.{os.getpid()}.{id(self)}.{name}" for name in ("out", "err"))
        for path in (self.out, self.err):
            path.write_text("")
        target_args = (list(args), str(cwd), {**os.environ, **(env or {})}, str(self.out), str(self.err))
        self.process = CONTEXT.Process(target=_gan_train, args=target_args)
        self.process.start()

    def wait_for_line(self, prefix: str, timeout: float = 300) -> None:
        """Wait until a line of its stdout starts with `prefix`; fail if it ends first or time runs out."""
        deadline = time.monotonic() + timeout
        while not any(line.startswith(prefix) for line in self.out.read_text().splitlines()):
            if not self.process.is_alive() or time.monotonic() > deadline:
                raise AssertionError(f"no line {prefix!r} from gan-train {' '.join(self.args)}:\n{self.out.read_text()}{self.err.read_text()}")
            time.sleep(0.01)

    def send_signal(self, signum: int) -> None:
        os.kill(self.process.pid, signum)

    def finish(self, timeout: float = 300) -> subprocess.CompletedProcess:
        """Wait for it to end (kill it after `timeout` seconds); its exit status and output."""
        self.process.join(timeout)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join()
        stdout, stderr = (path.read_text() for path in (self.out, self.err))
        self.out.unlink()
        self.err.unlink()
        return subprocess.CompletedProcess(["gan-train", *self.args], self.process.exitcode, stdout, stderr)


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
