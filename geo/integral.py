"""Regression#3: Sun et al.'s integral regression (ECCV 2018) with G summed into its features.

Paper Sec. 4: "we also try to use state-of-the-art 3D pose estimators [18, 31] as the
regression components. The learnt representation G [...] is injected into their
frameworks [...] referred to as Regression#2 and Regression#3 respectively. [...] we only
forward the geometry representation G to fully connection layers to match the feature
dimension of baselines, and then directly do element-wise sum with baselines". Table 1:
Sun et al. 49.8 mm -> Ours+Regression#3 46.3 mm (Protocol #1).

Sun et al., "Integral Human Pose Regression": a ResNet backbone (ResNet-50, ImageNet
initialised, its classifier removed) on a 256 x 256 crop of the person, three
deconvolution layers (4 x 4, stride 2, 256 channels, BN, ReLU) and a 1 x 1 convolution to
J x D channels: one volumetric heatmap (D depth bins x 64 x 64) per joint. The joint is
the *integral* of the heatmap -- soft-argmax, the expectation of the voxel coordinates
under the softmax of the heatmap -- so the network is trained end to end with an L1 loss on
coordinates: x, y in the crop and z, the depth relative to the root.

Here: :class:`ResNet` is torchvision's ResNet layout (same module and parameter names, so
a torchvision ``resnet50`` state dict loads with ``strict=False``; no weights are ever
downloaded), written out in ~40 lines so that geo depends on torch alone (torchvision's
wheels are pinned to one torch version each, and ``make TORCH=...`` lets a user choose
the torch build). G (B, M, 3) goes through one linear layer to the backbone's channel
count and is added to every spatial position of the last backbone feature map (the
"element-wise sum"), before the deconvolutions. ``in_g = 0`` is plain Sun et al.

Coordinates (:func:`targets`, :func:`to_camera`): x, y in units of the square crop
(``geo.render.crop_boxes``: the crop the skeleton maps use too), in [-0.5, 0.5]; z =
(Z - Z_root) / ``depth_range`` (mm). Back to millimetres with the camera's pinhole
(distortion ignored) and the root depth, which Sun et al. take from the ground truth at
test time (root-relative evaluation, Protocols #1-#3); the result is made root-relative.

It needs RGB frames: Human3.6M's videos, which only a user's copy provides (extracted as
JPEGs in mmpose's layout, :func:`frame_path`). Without them Table 1 says "needs video
frames" (:mod:`geo.tables`); tests train it for a few steps on the four image fixtures.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from geo.cameras import world_to_camera
from geo.regress import views
from geo.render import crop_boxes

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LAYERS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3)),
          101: ("bottleneck", (3, 4, 23, 3)), 152: ("bottleneck", (3, 8, 36, 3))}


@dataclass
class IntegralConfig:
    depth: int = 50            # ResNet depth (Sun et al.: 50)
    width: int = 64            # channels of the ResNet stem (torchvision: 64); tests use 8
    size: int = 256            # input crop, px (Sun et al.: 256); heatmaps are size / 4
    joints: int = 17           # H36M17
    depth_bins: int = 64       # D (Sun et al.: 64)
    deconv: int = 256          # channels of the three deconvolution layers
    in_g: int = 0              # M * 3 for Ours+Regression#3, 0 for plain Sun et al.
    depth_range: float = 2000.0  # mm spanned by the depth bins, centred on the root

    def __post_init__(self):
        if self.depth not in LAYERS:
            raise ValueError(f"IntegralConfig.depth = {self.depth}; expected one of {sorted(LAYERS)}")
        if self.size % 32 or self.size < 32:
            raise ValueError(f"IntegralConfig.size = {self.size}; expected a multiple of 32 (the backbone's stride)")


# --------------------------------------------------------------------------- backbone
def _bn(c):
    return nn.BatchNorm2d(c)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, c, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c, 3, stride, 1, bias=False)
        self.bn1 = _bn(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = _bn(c)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, c, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c, 1, bias=False)
        self.bn1 = _bn(c)
        self.conv2 = nn.Conv2d(c, c, 3, stride, 1, bias=False)   # stride on the 3x3 (torchvision's v1.5)
        self.bn2 = _bn(c)
        self.conv3 = nn.Conv2d(c, c * 4, 1, bias=False)
        self.bn3 = _bn(c * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
    """torchvision's ResNet without its pooling and classifier: (B, 3, H, W) -> (B, C, H/32,
    W/32), C = 8 * width * expansion (2048 for ResNet-50)."""

    def __init__(self, depth: int = 50, width: int = 64):
        super().__init__()
        kind, counts = LAYERS[depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = _bn(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = width
        for i, n in enumerate(counts):
            c, stride = width * 2 ** i, 1 if i == 0 else 2
            down = None
            if stride != 1 or cin != c * block.expansion:
                cout = c * block.expansion
                down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), _bn(cout))
            blocks = [block(cin, c, stride, down)]
            cin = c * block.expansion
            blocks += [block(cin, c) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.channels = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


# --------------------------------------------------------------------------- model
def soft_argmax(heat: torch.Tensor) -> torch.Tensor:
    """Integral of volumetric heatmaps (B, J, D, H, W) -> (B, J, 3) coordinates (x, y, z),
    each in [-0.5, 0.5]: the expectation of the voxel centres ((i + 0.5) / n - 0.5 along an
    axis of n voxels) under softmax(heat) over the whole volume (Sun et al., Eq. 3)."""
    B, J, D, H, W = heat.shape
    p = F.softmax(heat.reshape(B, J, -1).float(), -1).reshape(B, J, D, H, W)
    axis = lambda n: (torch.arange(n, device=heat.device, dtype=p.dtype) + 0.5) / n - 0.5   # noqa: E731
    x = (p.sum((2, 3)) * axis(W)).sum(-1)
    y = (p.sum((2, 4)) * axis(H)).sum(-1)
    z = (p.sum((3, 4)) * axis(D)).sum(-1)
    return torch.stack([x, y, z], -1)


class IntegralRegressor(nn.Module):
    """Sun et al.'s network, G optionally summed into the backbone's features (module
    docstring). ``forward(images (B, 3, size, size) normalised, g (B, M, 3) or None)`` ->
    (B, J, 3) crop-normalised coordinates (:func:`targets`)."""

    def __init__(self, cfg: IntegralConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or IntegralConfig()
        self.backbone = ResNet(cfg.depth, cfg.width)
        layers, cin = [], self.backbone.channels
        for _ in range(3):
            layers += [nn.ConvTranspose2d(cin, cfg.deconv, 4, 2, 1, bias=False), _bn(cfg.deconv), nn.ReLU(inplace=True)]
            cin = cfg.deconv
        self.deconv = nn.Sequential(*layers)
        self.final = nn.Conv2d(cfg.deconv, cfg.joints * cfg.depth_bins, 1)
        self.embed_g = nn.Linear(cfg.in_g, self.backbone.channels) if cfg.in_g else None
        for m in self.deconv.modules():
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.normal_(m.weight, std=0.001)
        nn.init.normal_(self.final.weight, std=0.001)
        nn.init.zeros_(self.final.bias)

    def forward(self, images: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        h = self.backbone(images)
        if self.embed_g is not None:
            if g is None:
                raise ValueError(f"this regressor sums G into its features (in_g = {self.cfg.in_g}); g is missing")
            h = h + self.embed_g(g.flatten(1).to(h.dtype))[:, :, None, None]
        heat = self.final(self.deconv(h))
        B, _, H, W = heat.shape
        return soft_argmax(heat.view(B, self.cfg.joints, self.cfg.depth_bins, H, W))


def loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Sun et al.'s L1 loss on the integral coordinates."""
    return (pred - target).abs().mean()


# --------------------------------------------------------------------------- coordinates
def boxes(x2d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Square crops (centres (N, 2), sides (N,)) around 2D joints (N, J, 2) px: the
    skeleton maps' crop (:func:`geo.render.crop_boxes`), so image and G see one box."""
    c, s = crop_boxes(torch.as_tensor(np.asarray(x2d, np.float32)))
    return c.numpy(), s.numpy()


def targets(p2d: np.ndarray, p3d_cam: np.ndarray, centre: np.ndarray, side: np.ndarray,
            depth_range: float = 2000.0, root: int = 0) -> np.ndarray:
    """(N, J, 3) training targets: x, y = (2D px - centre) / side; z = (Z - Z_root) /
    depth_range, with Z the camera-frame depth (mm) of ``p3d_cam`` (N, J, 3)."""
    p2d, p3d = np.asarray(p2d, np.float64), np.asarray(p3d_cam, np.float64)
    xy = (p2d - centre[:, None]) / side[:, None, None]
    z = (p3d[..., 2] - p3d[:, root:root + 1, 2]) / depth_range
    return np.concatenate([xy, z[..., None]], -1).astype(np.float32)


def to_camera(pred: np.ndarray, centre: np.ndarray, side: np.ndarray, root_depth: np.ndarray, f, c,
              depth_range: float = 2000.0, root: int = 0) -> np.ndarray:
    """Integral coordinates (N, J, 3) -> root-relative camera-frame joints (N, J, 3) mm:
    pixel u = x * side + centre, Z = z * depth_range + root depth, X = (u - c) Z / f (the
    pinhole; ``f``, ``c`` of shape (2,) or (N, 2)). The inverse of :func:`targets` up to
    the camera's distortion."""
    pred = np.asarray(pred, np.float64)
    u = pred[..., :2] * np.asarray(side, np.float64)[:, None, None] + np.asarray(centre, np.float64)[:, None]
    Z = pred[..., 2] * depth_range + np.asarray(root_depth, np.float64)[:, None]
    f, c = np.asarray(f, np.float64).reshape(-1, 1, 2), np.asarray(c, np.float64).reshape(-1, 1, 2)
    xy = (u - c) / f * Z[..., None]
    cam = np.concatenate([xy, Z[..., None]], -1)
    return cam - cam[:, root:root + 1]


# --------------------------------------------------------------------------- images
def frame_path(root, subject: str, action: str, camera: str, frame: int, stride: int = 5) -> Path:
    """The JPEG of one 10 Hz frame in mmpose's layout of extracted Human3.6M frames:
    ``<root>/S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000001.jpg`` (the number
    is the 1-based 50 Hz frame: 10 Hz frame ``i`` -> ``i * stride + 1``)."""
    stem = f"{subject}_{action.replace(' ', '_')}.{camera}"
    return Path(root) / subject / stem / f"{stem}_{frame * stride + 1:06d}.jpg"


def crop(image: np.ndarray, centre, side: float, size: int) -> np.ndarray:
    """The square box (``centre``, ``side``) of an image (H, W, 3) resized to (size, size,
    3) with bilinear sampling; outside the image is black."""
    import cv2

    s = size / float(side)
    A = np.array([[s, 0, size / 2 - s * centre[0]], [0, s, size / 2 - s * centre[1]]], np.float64)
    return cv2.warpAffine(image, A, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))


def read_crops(paths, centres, sides, size: int) -> torch.Tensor:
    """RGB crops of JPEG files as a (N, 3, size, size) float tensor normalised with
    ImageNet's mean and std (Sun et al.'s input). A missing or unreadable file raises
    naming it."""
    import cv2

    out = []
    for p, c, s in zip(paths, centres, sides):
        im = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if im is None:
            raise FileNotFoundError(f"{p}: missing or not an image; expected a Human3.6M frame as JPEG "
                                    f"(layout of geo.integral.frame_path)")
        out.append(crop(im[..., ::-1], c, s, size))
    x = torch.as_tensor(np.stack(out)).permute(0, 3, 1, 2).float() / 255.0
    m, sd = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    return (x - m) / sd


def train_steps(model: IntegralRegressor, images: torch.Tensor, g: torch.Tensor | None, target: torch.Tensor,
                steps: int, lr: float = 1e-3, batch: int | None = None, seed: int = 0) -> list[float]:
    """``steps`` Adam updates of ``model`` on (images, G, targets) held in memory (Sun et
    al.: Adam, L1 loss); returns the loss of each step. A frames dataset larger than memory
    feeds this function batch by batch."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    n = len(images)
    b = min(batch or n, n)
    losses = []
    for _ in range(steps):
        idx = torch.randperm(n, generator=gen)[:b]
        pred = model(images[idx], None if g is None else g[idx])
        lo = loss(pred, target[idx])
        opt.zero_grad(set_to_none=True)
        lo.backward()
        opt.step()
        losses.append(float(lo.detach()))
    return losses


def samples(ds, frames_root, subjects, cameras=None, input2d: str = "gt") -> dict:
    """The (frame, camera) rows of ``subjects`` whose JPEG exists under ``frames_root``
    (:func:`frame_path`), as Regression#3's training or test rows: ``paths``; ``x2d`` (N, 17,
    2) px, the ground-truth projection (``input2d="gt"``, what the crop box and Sun et al.'s
    2D targets use); ``p3d`` (N, 17, 3) mm camera frame; ``box`` (centres (N, 2), sides
    (N,)); ``f``, ``c`` (N, 2) each row's camera intrinsics; ``actions``, ``subjects``,
    ``cameras`` per row. Rows without a frame are skipped; none at all raises naming the
    folder."""
    out = {k: [] for k in ("paths", "x2d", "p3d", "f", "c", "actions", "subjects", "cameras")}
    for s, a, seq, cid, cam in views(ds, subjects, cameras):
        folder = frame_path(frames_root, s, a, cid, 0).parent
        if not folder.is_dir():
            continue
        have = {q.name for q in folder.iterdir()}
        idx = [i for i in range(len(seq.poses_3d)) if frame_path(frames_root, s, a, cid, i).name in have]
        if not idx:
            continue
        p3 = seq.poses_3d[idx].astype(np.float64)
        out["paths"] += [frame_path(frames_root, s, a, cid, i) for i in idx]
        out["x2d"] += list(cam.project(p3))
        out["p3d"] += list(world_to_camera(p3, cam.R, cam.T))
        out["f"] += [np.ravel(cam.f)] * len(idx)
        out["c"] += [np.ravel(cam.c)] * len(idx)
        out["actions"] += [a] * len(idx)
        out["subjects"] += [s] * len(idx)
        out["cameras"] += [cid] * len(idx)
    if not out["paths"]:
        raise FileNotFoundError(f"{frames_root}: no Human3.6M frames of {list(subjects)} found; expected JPEGs like "
                                f"{frame_path(frames_root, 'S1', 'Directions 1', '54138969', 0)}")
    arr = {k: np.asarray(v, np.float32) for k, v in out.items() if k in ("x2d", "p3d", "f", "c")}
    arr["box"] = boxes(arr["x2d"])
    return {**out, **arr}
