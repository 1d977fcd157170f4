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


# --------------------------------------------------------------------------- generator
@dataclass
class GeneratorConfig:
    in_channels: int = 15        # one skeleton map per bone (Sec. 3.1)
    size: int = 64               # maps are 64 x 64 (Sec. 4)
    width: int = 32              # U-Net's 64 halved (Sec. 4); 8 in the CPU quick profile
    depth: int = 4               # down-samplings: 64 -> 4
    points: int = 64             # M, points of the latent cloud G


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
        h = h.contiguous(memory_format=torch.channels_last) if g.is_cuda else h
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
    dropout: float = 0.25
    blocks: int = 2              # residual blocks of the Martinez network


class Residual(nn.Module):
    def __init__(self, h: int, p: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(h, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(p),
                                 nn.Linear(h, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(p))

    def forward(self, x):
        return x + self.net(x)


class Regressor(nn.Module):
    """The 3D regressors. The first layer embeds each input it is given (2D joints through
    one linear layer, G through another) and sums them -- the paper's "forward G to fully
    connected layers to match the feature dimension of baselines, and then directly do
    element-wise sum" (Sec. 4). ``fc``: embed, ReLU, dropout, linear -> 48 (two layers).
    ``martinez``: embed, BN, ReLU, dropout, ``blocks`` residual blocks, linear -> 48."""

    def __init__(self, cfg: RegressorConfig):
        super().__init__()
        if not (cfg.in_2d or cfg.in_g):
            raise ValueError("a regressor needs 2D joints, G, or both as input")
        self.cfg = cfg
        self.embed_2d = nn.Linear(cfg.in_2d, cfg.hidden) if cfg.in_2d else None
        self.embed_g = nn.Linear(cfg.in_g, cfg.hidden) if cfg.in_g else None
        if cfg.kind == "fc":
            self.body = nn.Sequential(nn.ReLU(), nn.Dropout(cfg.dropout))
        elif cfg.kind == "martinez":
            self.body = nn.Sequential(nn.BatchNorm1d(cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout),
                                      *[Residual(cfg.hidden, cfg.dropout) for _ in range(cfg.blocks)])
        else:
            raise ValueError(f"unknown regressor kind {cfg.kind!r}; expected 'fc' or 'martinez'")
        self.head = nn.Linear(cfg.hidden, cfg.out)

    def forward(self, x2d: torch.Tensor | None = None, g: torch.Tensor | None = None) -> torch.Tensor:
        h = 0
        if self.embed_2d is not None:
            h = h + self.embed_2d(x2d.flatten(1))
        if self.embed_g is not None:
            h = h + self.embed_g(g.flatten(1))
        return self.head(self.body(h))
