"""NatureCNN (Mnih et al., 2015), and PPO's actor-critic built from it in either layout:
``shared`` (the thesis's code: stable-baselines3's ``CnnPolicy`` default, one NatureCNN
trunk feeding an action head and a value head) or ``separate`` (an actor and a critic
network of this shape, differing only in the output layer: 15 logits or 1 value).

conv 32×8×8 s4 → conv 64×4×4 s2 → conv 64×3×3 s1 → flatten → fc 512 → head; ReLU
between layers, no padding. Input: ``uint8 [N, 64, 64, 3]`` frames, scaled to [0, 1].
Parameter names (``conv1 … conv3``, ``fc``, ``head``) are what permutation specs and
checkpoints refer to.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from crl_merge.models.axes import linear
from envs.core import NUM_ACTIONS

IMAGE_SHAPE = (64, 64, 3)
FLATTEN_CHANNELS, FLATTEN_HEIGHT, FLATTEN_WIDTH = 64, 4, 4  # conv3's output on a 64×64 frame


class NatureCNN(nn.Module):
    def __init__(self, out_dim: int):
        super().__init__()
        self.out_dim = out_dim
        self.conv1 = nn.Conv2d(3, 32, kernel_size=8, stride=4)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=4, stride=2)
        self.conv3 = nn.Conv2d(64, FLATTEN_CHANNELS, kernel_size=3, stride=1)
        self.fc = nn.Linear(FLATTEN_CHANNELS * FLATTEN_HEIGHT * FLATTEN_WIDTH, 512)
        self.head = nn.Linear(512, out_dim)

    def features(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Post-ReLU activations of every hidden layer (for activation matching and analysis)."""
        # The NHWC frames viewed as NCHW without a copy: a channels-last tensor, which oneDNN
        # convolves faster than a contiguous NCHW copy (training updates ~1.25x on 2 CPU cores).
        frames = obs.permute(0, 3, 1, 2)
        out = {"conv1": torch.relu(self._conv1(frames))}
        out["conv2"] = torch.relu(self.conv2(out["conv1"]))
        out["conv3"] = torch.relu(self.conv3(out["conv2"]))
        out["fc"] = torch.relu(self.fc(out["conv3"].flatten(1)))
        return out

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(obs)["fc"])

    def _conv1(self, frames: torch.Tensor) -> torch.Tensor:
        """conv1 of the frames scaled to [0, 1]. Under bf16 autocast the pixel values (integers
        0–255, exact in bf16) go to the convolution as they are and the 1/255 is folded into
        its weights: scaling and casting the 25M-element input of a 2,048-frame minibatch in
        fp32 took a third of a bf16 update on the CPU. In fp32 the reference arithmetic stays."""
        device = frames.device.type
        if torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device) == torch.bfloat16:
            return F.conv2d(frames.to(torch.bfloat16), self.conv1.weight * (1 / 255.0), self.conv1.bias,
                            stride=self.conv1.stride)
        return self.conv1(frames.float() / 255.0)


def init_like_sb3(model: NatureCNN, head_gain: float) -> NatureCNN:
    """Orthogonal initialisation as stable-baselines3's ``ActorCriticPolicy`` does it
    (``ortho_init=True``): gain √2 for the feature layers, ``head_gain`` for the output
    layer (0.01 for the action logits, 1 for the value), biases zero."""
    for layer in (model.conv1, model.conv2, model.conv3, model.fc):
        nn.init.orthogonal_(layer.weight, gain=math.sqrt(2))
        nn.init.zeros_(layer.bias)
    nn.init.orthogonal_(model.head.weight, gain=head_gain)
    nn.init.zeros_(model.head.bias)
    return model


def make_actor(seed: int | None = None) -> NatureCNN:
    """A freshly initialised actor (15 logits); ``seed`` fixes its weights."""
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        return init_like_sb3(NatureCNN(NUM_ACTIONS), head_gain=0.01)


def make_critic(seed: int | None = None) -> NatureCNN:
    """A freshly initialised critic (1 value); ``seed`` fixes its weights."""
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed + 1_000_003)  # a different stream from the actor's
        return init_like_sb3(NatureCNN(1), head_gain=1.0)


POLICY_LAYOUTS = ("shared", "separate")


class SharedActorCritic(nn.Module):
    """One trunk, two heads: ``actor`` is the trunk with the action head (a NatureCNN, what is
    evaluated and merged) and ``value_net`` reads the same 512 features."""

    layout = "shared"

    def __init__(self, actor: NatureCNN, value_net: nn.Linear):
        super().__init__()
        self.actor, self.value_net = actor, value_net

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits [N, 15], values [N])`` from one pass through the trunk."""
        features = self.actor.features(obs)["fc"]
        return self.actor.head(features), self.value_net(features).squeeze(1)

    def critic_network(self) -> NatureCNN:
        """The trunk with the value head, as a NatureCNN of its own (a copy)."""
        critic = NatureCNN(1).to(self.value_net.weight.device)
        critic.load_state_dict({**{k: v for k, v in self.actor.state_dict().items() if not k.startswith("head.")},
                                "head.weight": self.value_net.weight, "head.bias": self.value_net.bias})
        return critic.eval()


class SeparateActorCritic(nn.Module):
    """Two networks: the actor's logits and the critic's value share nothing."""

    layout = "separate"

    def __init__(self, actor: NatureCNN, critic: NatureCNN):
        super().__init__()
        self.actor, self.critic = actor, critic

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.actor(obs), self.critic(obs).squeeze(1)

    def critic_network(self) -> NatureCNN:
        return self.critic


def make_actor_critic(layout: str, seed: int | None = None) -> SharedActorCritic | SeparateActorCritic:
    """A freshly initialised actor-critic; ``seed`` fixes its weights. The actor is
    ``make_actor(seed)`` in both layouts; the value head is orthogonal with gain 1, as SB3's."""
    if layout == "separate":
        return SeparateActorCritic(make_actor(seed), make_critic(seed))
    if layout != "shared":
        raise ValueError(f"unknown policy layout {layout!r}; layouts: {list(POLICY_LAYOUTS)}")
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed + 1_000_003)  # a different stream from the actor's
        value_net = nn.Linear(512, 1)
        nn.init.orthogonal_(value_net.weight, gain=1.0)
        nn.init.zeros_(value_net.bias)
    return SharedActorCritic(make_actor(seed), value_net)


SB3_LAYERS = {"conv1": "cnn.0", "conv2": "cnn.2", "conv3": "cnn.4", "fc": "linear.0"}
"""Our trunk layers' names in stable-baselines3's ``NatureCNN`` features extractor."""

PARAMETER_GROUPS = {
    "conv": r"^conv[123]\.",
    "conv1": r"^conv1\.",
    "conv2": r"^conv2\.",
    "conv3": r"^conv3\.",
    "fc": r"^fc\.",
    "head": r"^head\.",
}
"""Layer groups by name pattern, for merging a subset of the parameters."""


def permutation_axes() -> dict:
    """The permutation spec as data: channels of each conv and units of ``fc``; the head's
    outputs (actions or the value) stay put. ``fc`` reads conv3's channels in blocks of
    16, since flatten is channel-major."""
    with torch.device("meta"):
        model = NatureCNN(out_dim=1)
    return {"sizes": {"conv1": model.conv1.out_channels, "conv2": model.conv2.out_channels,
                      "conv3": model.conv3.out_channels, "fc": model.fc.out_features},
            "axes": {**linear("conv1", None, "conv1"), **linear("conv2", "conv1", "conv2"),
                     **linear("conv3", "conv2", "conv3"), **linear("fc", "conv3", "fc"), **linear("head", "fc", None)}}


def actor_critic_permutation_axes(layout: str) -> dict:
    """The permutation spec of a whole actor-critic (what the continual protocols merge):
    the actor's spec under ``actor.``; with the shared trunk the value head reads the
    trunk's ``fc`` units like the action head does, so it is renumbered with them (the
    network's function is unchanged); a separate critic gets permutations of its own
    (``critic.conv1`` …)."""
    actor = permutation_axes()
    axes = {f"actor.{param}": entries for param, entries in actor["axes"].items()}
    if layout == "shared":
        return {"sizes": actor["sizes"], "axes": {**axes, **linear("value_net", "fc", None)}}
    if layout != "separate":
        raise ValueError(f"unknown policy layout {layout!r}; layouts: {list(POLICY_LAYOUTS)}")
    rename = lambda p: None if p is None else f"critic.{p}"  # noqa: E731
    return {"sizes": {**actor["sizes"], **{f"critic.{p}": n for p, n in actor["sizes"].items()}},
            "axes": {**axes, **{f"critic.{param}": tuple(rename(p) for p in entries)
                                for param, entries in actor["axes"].items()}}}
