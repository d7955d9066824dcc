"""The Decision Transformer (Chen et al., 2021) as the merging paper uses it: a GPT-2 style
causal transformer over (return-to-go, state, action) tokens, with per-environment input
and output projections around one transformer trunk.

The split matters for merging: ``transformer.*`` (blocks and final layer norm) has the
same shape for every environment and is what gets merged; ``io.<env>.*`` (timestep,
return, state and action embeddings, their layer norm, and the action head) depends on the
environment's state and action sizes and is never merged. A model holds one ``io`` entry
per environment it serves, so a merged or co-trained multi-task DT is the same class.

Attention uses separate query/key/value/output projections (``attn.q/k/v/o``) rather than
GPT-2's fused ``c_attn``, so that permutation specs can name each one.

Two choices follow the merging paper's code (``daniellawson9999/merging-decision-transformers``,
``decision_transformer/models/decision_transformer.py`` and ``trajectory_gpt2.py``) by
default, with the other reading kept as a named option of :class:`DTConfig`:

``embed_ln``  ``before_timestep`` (paper): the token embeddings are layer-normalised and the
              timestep embedding is added afterwards (the layout after Reid et al.);
              ``after_timestep``: the timestep embedding is added first, then normalised
              (``kzl/decision-transformer``).
``init``      ``paper``: the embeddings and the action head keep PyTorch's default
              initialisation (the paper's DT builds them as plain ``nn`` modules), the
              GPT-2 blocks get GPT-2's N(0, 0.02) weights and zero biases, and the two
              residual output projections of each block (GPT-2's ``c_proj``: our
              ``attn.o`` and ``mlp.proj``) N(0, 0.02/√(2·n_layer)); ``normal``: N(0, 0.02)
              for every linear and embedding weight.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from crl_merge.models.axes import layer_norm, linear


@dataclass(frozen=True)
class DTConfig:
    """Hyperparameters of the paper (protocols B): 3 layers, 1 head, width 128, K = 20."""

    envs: dict[str, tuple[int, int]] = field(default_factory=dict)  # env name → (state_dim, act_dim)
    n_layer: int = 3
    n_head: int = 1
    n_embd: int = 128
    context: int = 20
    max_ep_len: int = 1000
    dropout: float = 0.1
    activation: str = "relu"
    embed_ln: str = "before_timestep"
    init: str = "paper"

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        for key, allowed in (("activation", ACTIVATIONS), ("embed_ln", EMBED_LN_ORDERS), ("init", INITS)):
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key} must be one of {sorted(allowed)}, got {getattr(self, key)!r}")
        for name, dims in self.envs.items():
            if len(dims) != 2 or min(dims) < 1:
                raise ValueError(f"envs[{name!r}] must be (state_dim, act_dim) ≥ 1, got {dims!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["envs"] = {k: list(v) for k, v in self.envs.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DTConfig":
        d = dict(d)
        d["envs"] = {k: tuple(v) for k, v in d.get("envs", {}).items()}
        return cls(**d)


ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}
EMBED_LN_ORDERS = ("before_timestep", "after_timestep")
INITS = ("paper", "normal")


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: DTConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.q = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.k = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.v = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.o = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.dropout = cfg.dropout
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, key_padding: torch.Tensor | None) -> torch.Tensor:
        b, t, c = x.shape
        heads = lambda y: y.view(b, t, self.n_head, c // self.n_head).transpose(1, 2)  # noqa: E731
        q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        if key_padding is not None:  # [b, t] True where the token is real
            mask = mask & key_padding[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.resid_drop(self.o(y.transpose(1, 2).reshape(b, t, c)))


class MLP(nn.Module):
    def __init__(self, cfg: DTConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd)
        self.act = ACTIVATIONS[cfg.activation]()
        self.proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.drop(self.proj(self.act(self.fc(x))))


class Block(nn.Module):
    """Pre-norm GPT-2 block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, cfg: DTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = MLP(cfg)

    def forward(self, x, key_padding=None):
        x = x + self.attn(self.ln_1(x), key_padding)
        return x + self.mlp(self.ln_2(x))


class Trunk(nn.Module):
    """The shared transformer: what merging acts on."""

    def __init__(self, cfg: DTConfig):
        super().__init__()
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)

    def forward(self, x, key_padding=None):
        x = self.drop(x)
        for block in self.blocks:
            x = block(x, key_padding)
        return self.ln_f(x)


class EnvIO(nn.Module):
    """One environment's embeddings and action head (never merged)."""

    def __init__(self, cfg: DTConfig, state_dim: int, act_dim: int):
        super().__init__()
        self.state_dim, self.act_dim = state_dim, act_dim
        self.embed_timestep = nn.Embedding(cfg.max_ep_len, cfg.n_embd)
        self.embed_return = nn.Linear(1, cfg.n_embd)
        self.embed_state = nn.Linear(state_dim, cfg.n_embd)
        self.embed_action = nn.Linear(act_dim, cfg.n_embd)
        self.embed_ln = nn.LayerNorm(cfg.n_embd)
        self.predict_action = nn.Linear(cfg.n_embd, act_dim)


class DecisionTransformer(nn.Module):
    def __init__(self, cfg: DTConfig):
        super().__init__()
        if not cfg.envs:
            raise ValueError("a DecisionTransformer needs at least one environment in DTConfig.envs")
        self.cfg = cfg
        # The trunk is built and initialised before the per-env projections draw any random
        # numbers, so that one seed gives one trunk whatever the envs (shared initialisation).
        self.transformer = Trunk(cfg)
        self.transformer.apply(_init_weights)
        if cfg.init == "paper":
            for block in self.transformer.blocks:
                for residual_out in (block.attn.o, block.mlp.proj):
                    nn.init.normal_(residual_out.weight, mean=0.0, std=0.02 / (2 * cfg.n_layer) ** 0.5)
        self.io = nn.ModuleDict({name: EnvIO(cfg, s, a) for name, (s, a) in cfg.envs.items()})
        if cfg.init == "normal":
            self.io.apply(_init_weights)

    def forward(self, env: str, states, actions, returns_to_go, timesteps, attention_mask=None):
        """Predicted actions ``[B, K, act_dim]`` (tanh-squashed) from the state tokens.

        ``states [B, K, state_dim]``, ``actions [B, K, act_dim]``, ``returns_to_go [B, K, 1]``,
        ``timesteps [B, K]`` (long), ``attention_mask [B, K]`` (1 = real, 0 = left padding).
        """
        if env not in self.io:
            raise KeyError(f"this model has no projections for environment {env!r}; it has {sorted(self.io)}")
        io = self.io[env]
        b, k = states.shape[:2]
        time = io.embed_timestep(timesteps)[:, :, None]
        tokens = torch.stack([io.embed_return(returns_to_go), io.embed_state(states), io.embed_action(actions)], dim=2)
        if self.cfg.embed_ln == "before_timestep":
            tokens = io.embed_ln(tokens) + time
        else:
            tokens = io.embed_ln(tokens + time)
        tokens = tokens.reshape(b, 3 * k, -1)
        padding = None
        if attention_mask is not None:
            padding = attention_mask.bool().repeat_interleave(3, dim=1)
        x = self.transformer(tokens, padding).reshape(b, k, 3, -1)
        return torch.tanh(io.predict_action(x[:, :, 1]))

    @torch.no_grad()
    def get_action(self, env: str, states, actions, returns_to_go, timesteps) -> torch.Tensor:
        """The next action for a batch of histories (``[B, T, …]``, T ≥ 1): the last
        ``context`` steps, left-padded with zeros and masked."""
        k = self.cfg.context
        states, actions, returns_to_go, timesteps = (x[:, -k:] for x in (states, actions, returns_to_go, timesteps))
        pad = k - states.shape[1]
        mask = torch.cat([torch.zeros(states.shape[0], pad, device=states.device),
                          torch.ones(states.shape[0], states.shape[1], device=states.device)], dim=1)
        left = lambda x: F.pad(x, (0, 0) * (x.dim() - 2) + (pad, 0))  # noqa: E731
        out = self.forward(env, left(states), left(actions), left(returns_to_go), left(timesteps), mask)
        return out[:, -1]


def _init_weights(module: nn.Module) -> None:
    """GPT-2's initialisation of one module (before the residual-projection scaling)."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def parameter_groups(n_layer: int) -> dict[str, str]:
    """Named groups of parameters as name patterns (regular expressions), for merging,
    freezing and swapping subsets: ``attention``, ``mlp``, ``layer_norm``, ``transformer``,
    ``layer<i>``, ``attention<i>``, ``mlp<i>``, and the unmergeable ``embeddings`` and ``heads``."""
    groups = {
        "attention": r"^transformer\.blocks\.\d+\.attn\.",
        "mlp": r"^transformer\.blocks\.\d+\.mlp\.",
        "layer_norm": r"^transformer\.(blocks\.\d+\.ln_[12]|ln_f)\.",
        "transformer": r"^transformer\.",
        "embeddings": r"^io\.[^.]+\.embed_",
        "heads": r"^io\.[^.]+\.predict_",
    }
    for i in range(n_layer):
        groups[f"layer{i}"] = rf"^transformer\.blocks\.{i}\."
        groups[f"attention{i}"] = rf"^transformer\.blocks\.{i}\.attn\."
        groups[f"mlp{i}"] = rf"^transformer\.blocks\.{i}\.mlp\."
    return groups


def permutation_axes(cfg: DTConfig) -> dict:
    """Permutations of a pre-norm DT: ``residual`` (the residual stream, one for the whole
    network since every block adds into it), and per block ``blocks.<i>.mlp`` (hidden units),
    ``blocks.<i>.qk`` and ``blocks.<i>.vo`` (units within each head: the query and key
    projections share one, the value and output projections another) and, with more than
    one head, ``blocks.<i>.heads``.

    The per-environment ``io.*`` parameters are never merged, but the embeddings write into
    the residual stream and the action head reads it, so they are permuted with it: that is
    what keeps the network's function unchanged.
    """
    with torch.device("meta"):
        model = DecisionTransformer(cfg)
    res = "residual"
    sizes = {res: cfg.n_embd}
    nested = {}
    axes = {**layer_norm("transformer.ln_f", res)}
    for i, block in enumerate(model.transformer.blocks):
        b = f"transformer.blocks.{i}"
        heads = (f"blocks.{i}.heads",) if cfg.n_head > 1 else ()
        qk, vo = (f"blocks.{i}.qk",) + heads, (f"blocks.{i}.vo",) + heads
        sizes |= {f"blocks.{i}.qk": cfg.n_embd, f"blocks.{i}.vo": cfg.n_embd, f"blocks.{i}.mlp": block.mlp.fc.out_features}
        if heads:
            sizes[heads[0]] = cfg.n_head
            nested[heads[0]] = (qk[0], vo[0])
        axes |= {**layer_norm(f"{b}.ln_1", res), **layer_norm(f"{b}.ln_2", res),
                 **linear(f"{b}.attn.q", res, qk), **linear(f"{b}.attn.k", res, qk),
                 **linear(f"{b}.attn.v", res, vo), **linear(f"{b}.attn.o", vo, res),
                 **linear(f"{b}.mlp.fc", res, f"blocks.{i}.mlp"), **linear(f"{b}.mlp.proj", f"blocks.{i}.mlp", res)}
    for env in cfg.envs:
        io = f"io.{env}"
        axes |= {f"{io}.embed_timestep.weight": (None, res), **linear(f"{io}.embed_return", None, res),
                 **linear(f"{io}.embed_state", None, res), **linear(f"{io}.embed_action", None, res),
                 **layer_norm(f"{io}.embed_ln", res), **linear(f"{io}.predict_action", res, None)}
    return {"sizes": sizes, "axes": axes, "nested": nested}


def permutation_axes_of(configs: list[DTConfig]) -> dict:
    """The permutation data covering several Decision Transformers that differ only in their
    environments (so it can permute each of them)."""
    envs = {}
    for cfg in configs:
        if replace(cfg, envs={}) != replace(configs[0], envs={}):
            raise ValueError(f"Decision Transformers of different shapes: {configs[0]} vs {cfg}")
        envs |= cfg.envs
    return permutation_axes(replace(configs[0], envs=envs))
