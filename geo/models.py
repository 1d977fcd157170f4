"""Models: the geometry-aware generator (paper Sec. 3.2, Sec. 4 "Implementation
Details") and the 3D regressors (Sec. 3.4).

Generator. "We adopt the network architecture on the U-Net as the backbone of our
generator. The skip connections are removed to ensure all information can be encoded
into the latent codes. For model acceleration, we also halve the feature channels and
modify the input and output to 15-channel 64x64." The encoder phi maps skeleton maps to
G = [g_1 ... g_M]^T, g_m = (x_m, y_m, z_m) (Sec. 3.2): an M x 3 point cloud. The decoder
psi takes the rotated cloud G R(i->j)^T (every point rotated by R(i->j)) and draws the
skeleton maps of view j.

Default M = 64: the paper leaves M to its supplement; 64 points (192 numbers) is four
points per 2D joint, roomy enough for a 17-joint pose plus shape, and small enough that
a two-layer FC regressor on G (Regression#1, 1024 hidden) stays cheap.

Regressors (Sec. 3.4, Sec. 4): Baseline#1 is a two-layer FC network (1024 hidden, 48 out:
16 non-root joints x 3) on the 2D joints; Regression#1 is the same network on G;
Regression#2 is Martinez et al.'s (2017) lifting network on 2D joints plus G through an FC
layer, "element-wise sum with baselines".
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from geo import precision
from geo.render import LINE_WIDTH


# --------------------------------------------------------------------------- generator
@dataclass
class GeneratorConfig:
    in_channels: int = 15        # one skeleton map per bone (Sec. 3.1)
    size: int = 64               # maps are 64 x 64 (Sec. 4)
    width: int = 32              # U-Net's 64 halved (Sec. 4); 8 in the CPU quick profile
    depth: int = 4               # down-samplings: 64 -> 4
    points: int = 64             # M, points of the latent cloud G
    line_width: float = LINE_WIDTH  # limb width of the skeleton maps it reads and draws, in map pixels


def block(cin: int, cout: int) -> nn.Sequential:
    """The U-Net double convolution (3x3 conv, BN, ReLU) x 2."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Encoder(nn.Module):
    """phi: (B, 15, 64, 64) skeleton maps -> G (B, M, 3)."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        w = [cfg.width * 2 ** i for i in range(cfg.depth + 1)]            # 32 64 128 256 512
        self.stem = block(cfg.in_channels, w[0])
        self.down = nn.ModuleList(block(w[i], w[i + 1]) for i in range(cfg.depth))
        s = cfg.size // 2 ** cfg.depth
        self.to_points = nn.Linear(w[-1] * s * s, cfg.points * 3)
        self.points = cfg.points
        self.line_width = cfg.line_width   # how its input maps must be drawn (geo.regress.encode)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        h = self.stem(maps)
        for d in self.down:
            h = d(F.max_pool2d(h, 2))
        return self.to_points(h.flatten(1)).view(-1, self.points, 3).float()


class Decoder(nn.Module):
    """psi: rotated G (B, M, 3) -> skeleton maps of the target view (B, 15, 64, 64), as
    probabilities in [0, 1]."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        w = [cfg.width * 2 ** i for i in range(cfg.depth + 1)]
        self.s = cfg.size // 2 ** cfg.depth
        self.w_top = w[-1]
        self.from_points = nn.Linear(cfg.points * 3, w[-1] * self.s * self.s)
        self.up = nn.ModuleList(nn.ConvTranspose2d(w[i + 1], w[i], 2, stride=2) for i in reversed(range(cfg.depth)))
        self.conv = nn.ModuleList(block(w[i], w[i]) for i in reversed(range(cfg.depth)))
        self.head = nn.Conv2d(w[0], cfg.in_channels, 1)
        nn.init.constant_(self.head.bias, -4.0)  # maps are sparse (~1-2% on): start near empty

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.from_points(g.flatten(1))).view(-1, self.w_top, self.s, self.s)
        h = h.contiguous(memory_format=torch.channels_last) if precision.channels_last(g.device) else h
        for up, conv in zip(self.up, self.conv):
            h = conv(up(h))
        return torch.sigmoid(self.head(h).float())


def rotate(g: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """Rotate every point of G (B, M, 3) by R (B, 3, 3): g_m -> R g_m, i.e. G R^T."""
    return g @ R.transpose(-1, -2).to(g.dtype)


class Generator(nn.Module):
    """(phi, psi): maps of view i and R(i->j) -> maps of view j, through G (Eq. 1)."""

    def __init__(self, cfg: GeneratorConfig | None = None):
        super().__init__()
        self.cfg = cfg or GeneratorConfig()
        self.encoder = Encoder(self.cfg)
        self.decoder = Decoder(self.cfg)

    def forward(self, maps_i: torch.Tensor, R_ij: torch.Tensor | None):
        g = self.encoder(maps_i)
        g_ij = g if R_ij is None else rotate(g, R_ij)
        return self.decoder(g_ij), g, g_ij


# --------------------------------------------------------------------------- regressors
@dataclass
class RegressorConfig:
    kind: str = "fc"             # "fc" (Baseline#1 / Regression#1) or "martinez" (Regression#2)
    in_2d: int = 0               # 32 for 16 2D joints, 0 when unused
    in_g: int = 0                # M * 3 for G, 0 when unused
    hidden: int = 1024
    out: int = 48                # 16 non-root joints x 3
    dropout: float | None = None # None: 0.5 for "martinez" (Martinez et al. 2017), 0.25 for "fc"
    blocks: int = 2              # residual blocks of the Martinez network
    max_norm: float | None = None  # None: 1.0 for "martinez" (their tf.clip_by_norm(w, 1)), off for "fc"

    def __post_init__(self):
        if self.kind not in ("fc", "martinez"):
            raise ValueError(f"unknown regressor kind {self.kind!r}; expected 'fc' or 'martinez'")
        if not (self.in_2d or self.in_g):
            raise ValueError("a regressor needs 2D joints, G, or both as input")
        if self.dropout is None:
            self.dropout = 0.5 if self.kind == "martinez" else 0.25
        if self.max_norm is None:
            self.max_norm = 1.0 if self.kind == "martinez" else 0.0


def _kaiming(shape, fan_in: int, gen: torch.Generator) -> torch.Tensor:
    """Martinez et al.'s ``kaiming`` initialiser: truncated normal (+-2 sd) * sqrt(2 / fan_in)."""
    t = torch.empty(shape)
    nn.init.trunc_normal_(t, 0.0, 1.0, -2.0, 2.0, generator=gen)
    return t * (2.0 / fan_in) ** 0.5


class BatchedLinear(nn.Module):
    """F independent linear layers: x (F, B, din) -> (F, B, dout), one ``baddbmm``. With
    ``max_norm`` > 0 each fit's weight matrix is rescaled in the forward pass to Frobenius
    norm <= max_norm, as Martinez et al.'s ``tf.clip_by_norm(w, 1)`` (gradients flow
    through the clip)."""

    def __init__(self, fits: int, din: int, dout: int, max_norm: float = 0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(fits, din, dout))
        self.bias = nn.Parameter(torch.empty(fits, 1, dout))
        self.max_norm = max_norm

    def effective_weight(self) -> torch.Tensor:
        w = self.weight
        if self.max_norm:
            n = w.flatten(1).norm(dim=1).clamp_min(self.max_norm)
            w = w * (self.max_norm / n)[:, None, None]
        return w

    def forward(self, x):
        return torch.baddbmm(self.bias, x, self.effective_weight())


class BatchedBatchNorm(nn.Module):
    """Batch norm per fit: statistics over the batch dimension of (F, B, H), running
    estimates per fit (momentum 0.1, PyTorch's default)."""

    def __init__(self, fits: int, h: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(fits, 1, h))
        self.bias = nn.Parameter(torch.zeros(fits, 1, h))
        self.register_buffer("running_mean", torch.zeros(fits, 1, h))
        self.register_buffer("running_var", torch.ones(fits, 1, h))
        self.eps, self.momentum = eps, momentum

    def forward(self, x):
        x = x.float()   # statistics in float32 under bf16 autocast too (as nn.BatchNorm does)
        if self.training:
            var, mean = torch.var_mean(x, dim=1, keepdim=True, correction=0)
            with torch.no_grad():
                n = x.shape[1]
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * n / max(n - 1, 1), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias


class BatchedRegressor(nn.Module):
    """F regressors of one architecture as one module (every weight has a leading fit
    dimension), for training seeds / label subsets / ablation rungs at once.

    The first layer embeds each input it is given (2D joints through one linear layer, G
    through another) and sums them -- the paper's "forward G to fully connected layers to
    match the feature dimension of baselines, and then directly do element-wise sum"
    (Sec. 4). ``fc`` (Baseline#1 / Regression#1, "a two-layers fully-connected neural
    network", Sec. 3.4): embed, ReLU, dropout, linear -> 48. ``martinez`` (Martinez et al.
    2017, "A simple yet effective baseline"): embed, BN, ReLU, dropout, ``blocks`` residual
    blocks of 2 x (linear, BN, ReLU, dropout), linear -> 48; every weight matrix max-norm
    clipped to 1 in the forward pass. Init: Martinez et al.'s kaiming (weights and biases,
    truncated normal * sqrt(2/fan_in)); BN scale 1, shift 0.

    ``seeds``: one per fit; fit f's initial weights depend on seeds[f] only (drawn on the
    CPU), so a fit is the same alone or batched. ``forward(x2d, g, noise)``: x2d (F, B, 16, 2)
    or (F, B, 32), g (F, B, M, 3) or (F, B, 3M); ``noise`` (F, L, B, hidden) uniform [0, 1)
    draws for the L dropout layers (``n_dropout``) in training, from the caller's per-fit
    generators; without it dropout draws from the global RNG. Returns (F, B, 48)."""

    def __init__(self, cfg: RegressorConfig, seeds):
        super().__init__()
        self.cfg = cfg
        seeds = list(seeds)
        F_, h, mn = len(seeds), cfg.hidden, cfg.max_norm
        self.embed_2d = BatchedLinear(F_, cfg.in_2d, h, mn) if cfg.in_2d else None
        self.embed_g = BatchedLinear(F_, cfg.in_g, h, mn) if cfg.in_g else None
        self.linears = nn.ModuleList()
        self.norms = nn.ModuleList()
        if cfg.kind == "martinez":
            self.norms.append(BatchedBatchNorm(F_, h))
            for _ in range(2 * cfg.blocks):
                self.linears.append(BatchedLinear(F_, h, h, mn))
                self.norms.append(BatchedBatchNorm(F_, h))
        self.head = BatchedLinear(F_, h, cfg.out, mn)
        self.n_dropout = 1 + (2 * cfg.blocks if cfg.kind == "martinez" else 0)
        lins = [m for m in (self.embed_2d, self.embed_g) if m is not None] + list(self.linears) + [self.head]
        with torch.no_grad():
            for f, s in enumerate(seeds):
                gen = torch.Generator().manual_seed(int(s))
                for lin in lins:
                    din, dout = lin.weight.shape[1:]
                    lin.weight[f].copy_(_kaiming((din, dout), din, gen))
                    lin.bias[f].copy_(_kaiming((1, dout), dout, gen))

    @property
    def fits(self) -> int:
        return self.head.weight.shape[0]

    def _drop(self, h, noise, i):
        p = self.cfg.dropout
        if not self.training or p <= 0:
            return h
        u = noise[:, i] if noise is not None else torch.rand_like(h)
        return h * (u >= p).to(h.dtype) / (1 - p)

    def forward(self, x2d: torch.Tensor | None = None, g: torch.Tensor | None = None, noise=None) -> torch.Tensor:
        h = 0
        if self.embed_2d is not None:
            h = h + self.embed_2d(x2d.flatten(2))
        if self.embed_g is not None:
            h = h + self.embed_g(g.flatten(2))
        if self.cfg.kind == "fc":
            return self.head(self._drop(torch.relu(h), noise, 0))
        h = self._drop(torch.relu(self.norms[0](h)), noise, 0)
        for b in range(self.cfg.blocks):
            r = h
            for j in (2 * b, 2 * b + 1):
                r = self._drop(torch.relu(self.norms[j + 1](self.linears[j](r))), noise, j + 1)
            h = h + r
        return self.head(h)


class Regressor(nn.Module):
    """One regressor (:class:`BatchedRegressor` with one fit): x2d (B, 16, 2), g (B, M, 3)
    -> (B, 48)."""

    def __init__(self, cfg: RegressorConfig, seed: int = 0):
        super().__init__()
        self.cfg = cfg
        self.net = BatchedRegressor(cfg, [seed])

    def forward(self, x2d: torch.Tensor | None = None, g: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(None if x2d is None else x2d[None], None if g is None else g[None])[0]
