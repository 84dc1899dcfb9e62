"""train.compile: G's and D's forward passes compiled by torch.compile, in place.

In place (`nn.Module.compile`) keeps each network's state_dict keys, so checkpoints of compiled and
eager runs are the same files, and gan-sample needs no compiler. The known pitfalls of compiling
alternating GAN updates, and what this project does about them:

- D sees three kinds of input in a step: real images, detached fakes (D's update) and fakes that
  carry G's graph (G's update), each possibly under autocast. Each kind is one compiled graph
  (Dynamo guards on requires_grad, strides and dtype), all made in the first step and reused after.
  Switching D's parameters off for G's update (`requires_grad_(False)`) does not recompile; a test
  checks that steps after the first compile nothing.
- Gradient penalties and R1 need a double backward (the penalty is a function of D's input
  gradients), which compiled graphs do not support: they run D eagerly
  (gan_cli.losses.regularizers), so the penalty's graph is kept.
- Where the compiler cannot run (no C++ compiler, no Triton, an unsupported Python), one warning
  says so and the run goes on eagerly; a graph it fails on later also runs eagerly (Dynamo's
  suppress_errors) instead of stopping the run. That setting is Dynamo's, for the whole process: it
  is switched on only while a compiled network runs, so nothing else compiled in the process (a
  test, a user's own code) has its errors hidden.

mode: torch.compile's mode. On CUDA, `reduce-overhead` also captures CUDA graphs (one launch per
graph instead of one per kernel: what small MNIST networks are bound by on a GPU); the loop then
marks the start of every step (torch.compiler.cudagraph_mark_step_begin), after which the graphs
may reuse the previous step's output memory.
"""

import functools
import logging

import torch
from torch import nn

log = logging.getLogger(__name__)

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")  # the modes that capture CUDA graphs on a GPU


def compile_networks(networks: tuple[nn.Module, ...], mode: str, device: torch.device) -> bool:
    """Compile each network's forward in place; False, with a warning, where torch.compile cannot run."""
    import torch._dynamo  # here, not at the top: importing the compiler takes seconds, and most runs never do

    problem = compiler_problem(device)
    if problem is not None:
        log.warning(f"train.compile=true, but torch.compile cannot run here ({problem}); training eagerly")
        return False
    log.info(f"Compiling G and D with torch.compile (mode {mode}): the first steps take longer")
    for network in networks:
        network.compile(mode=mode)
        network._compiled_call_impl = _failures_run_eagerly(network._compiled_call_impl)
    return True


def _failures_run_eagerly(compiled):
    """`compiled`, calling which a graph that fails to compile runs eagerly (with Dynamo's warning)
    instead of stopping the run: Dynamo's suppress_errors, set for the call only."""
    import torch._dynamo

    @functools.wraps(compiled)
    def call(*args, **kwargs):
        with torch._dynamo.config.patch(suppress_errors=True):
            return compiled(*args, **kwargs)

    return call


def compiler_problem(device: torch.device) -> str | None:
    """Why torch.compile cannot run on `device` here (the first line of its error), or None.

    Compiles and runs one tiny function: that finds a missing C++ compiler (CPU), a missing Triton
    (CUDA) or an unsupported Python before the networks' first step, where the error would be long.
    """
    try:
        torch.compile(lambda x: x * 2 + 1, fullgraph=True)(torch.zeros(4, device=device))
    except Exception as err:  # the compiler's failures have no common base class
        return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return None
