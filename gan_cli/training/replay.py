"""A replay buffer of past fakes (Shrivastava et al. 2017): D sees some old fakes beside fresh ones,
so G cannot win by hopping back to a mode D has since forgotten."""

import torch


class ReplayBuffer:
    """Holds up to `capacity` fakes with their inputs (labels `y`, codes `c`; not `z`)."""

    def __init__(self, capacity: int, fraction: float):
        self.capacity = capacity
        self.fraction = fraction  # share of each fake batch that comes from the buffer
        self.size = 0
        self.fakes: torch.Tensor | None = None  # (capacity, C, H, W)
        self.inputs: dict[str, torch.Tensor] = {}  # name -> (capacity, ...)

    def mix(
        self, fake: torch.Tensor, inputs: dict[str, torch.Tensor], rng: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Replace a `fraction` of the batch with stored fakes, then store fresh fakes in their place.

        While the buffer holds fewer fakes than that share, D sees the fresh batch unchanged.
        """
        fake = fake.detach()
        inputs = {name: value for name, value in inputs.items() if name != "z"}
        k = round(self.fraction * len(fake))
        if k == 0:
            return fake, inputs
        mixed, mixed_inputs = fake, inputs
        if self.size >= k:
            old = torch.randint(self.size, (k,), generator=rng, device=fake.device)
            mixed = torch.cat([fake[k:], self.fakes[old]])
            mixed_inputs = {name: torch.cat([value[k:], self.inputs[name][old]]) for name, value in inputs.items()}
        self._store(fake[:k], {name: value[:k] for name, value in inputs.items()}, rng)
        return mixed, mixed_inputs

    def _store(self, fake: torch.Tensor, inputs: dict[str, torch.Tensor], rng: torch.Generator) -> None:
        if self.fakes is None:
            self.fakes = fake.new_zeros(self.capacity, *fake.shape[1:])  # zeros: slots not yet filled are saved too
            self.inputs = {name: value.new_zeros(self.capacity, *value.shape[1:]) for name, value in inputs.items()}
        if self.size < self.capacity:  # fill in order first, then overwrite random slots
            count = min(len(fake), self.capacity - self.size)
            slots = torch.arange(self.size, self.size + count, device=fake.device)
            self.size += count
        else:
            # distinct slots: with a repeated index, which write wins would be undefined
            slots = torch.randperm(self.capacity, generator=rng, device=fake.device)[: len(fake)]
        fake, inputs = fake[: len(slots)], {name: value[: len(slots)] for name, value in inputs.items()}
        self.fakes[slots] = fake
        for name, value in inputs.items():
            self.inputs[name][slots] = value

    def state_dict(self) -> dict:
        return {"size": self.size, "fakes": self.fakes, "inputs": self.inputs}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.size = state["size"]
        self.fakes = state["fakes"].to(device) if state["fakes"] is not None else None
        self.inputs = {name: value.to(device) for name, value in state["inputs"].items()}
