"""Domain classifiers: small CNNs whose features make FID/KID/PR cheap and meaningful on 28×28 data.

Architecture: conv3×3(32) → ReLU → maxpool → conv3×3(64) → ReLU → maxpool → FC(3136→128) → ReLU →
FC(128→10). The metric features are the 128-d FC activations *before* the ReLU (closer to Gaussian
than rectified ones, which FID assumes), standardized per dimension with the training set's mean
and std (buffers saved with the weights): raw activations are large enough that KID's cubic
kernel loses all precision in float32. The logits give a domain Inception Score and class
histograms. Weights ship in the package (`stabgen/metrics/weights/<dataset>.pt`) with their test
accuracy in a JSON file beside them; `bench train-classifier` retrains them.
"""

from __future__ import annotations

import json
import logging
import time
from importlib import resources
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from stabgen import data as data_mod
from stabgen import progress, settings
from stabgen.errors import StabgenError

log = logging.getLogger(__name__)

FEATURE_DIM = 128
WEIGHTS_PACKAGE = "stabgen.metrics"


class DomainClassifier(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, FEATURE_DIM)
        self.fc2 = nn.Linear(FEATURE_DIM, num_classes)
        self.register_buffer("feat_mean", torch.zeros(FEATURE_DIM))
        self.register_buffer("feat_std", torch.ones(FEATURE_DIM))

    @staticmethod
    def normalize(x_u8: torch.Tensor) -> torch.Tensor:
        """uint8 [B, C, 28, 28] → float in [-1, 1]; 3 equal channels (grey as RGB) are averaged."""
        x = x_u8.float()
        if x.shape[1] == 3:
            x = x.mean(dim=1, keepdim=True)
        return x / 127.5 - 1.0

    def features_and_logits(self, x_u8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.normalize(x_u8)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        pre = self.fc1(x.flatten(1))
        return (pre - self.feat_mean) / self.feat_std, self.fc2(F.relu(pre))

    def forward(self, x_u8: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(x_u8)[1]


def _file_stem(dataset: str) -> str:
    """A dataset name as a file name (a user's dataset is named by its path)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in dataset).strip("._") or "dataset"


def weights_path(dataset: str) -> Path:
    """The shipped weights of a built-in dataset, else the ones `bench train-classifier` wrote for it
    under the cache folder (a user's own dataset)."""
    shipped = Path(str(resources.files(WEIGHTS_PACKAGE) / "weights" / f"{dataset}.pt"))
    return shipped if shipped.exists() else settings.cache_dir() / "classifiers" / f"{_file_stem(dataset)}.pt"


def has_weights(dataset: str) -> bool:
    return weights_path(dataset).is_file()


def load(dataset: str, device: torch.device | str = "cpu") -> DomainClassifier:
    """The dataset's domain classifier, in eval mode (its class count from the card beside it)."""
    path = weights_path(dataset)
    if not path.exists():
        raise StabgenError(f"no domain classifier for {dataset!r} (looked for {path}); "
                           f"train one with `bench train-classifier --dataset {dataset}`")
    card = path.with_suffix(".json")
    classes = json.loads(card.read_text()).get("classes", 10) if card.exists() else 10
    model = DomainClassifier(num_classes=classes)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.to(device).eval()


@torch.no_grad()
def accuracy(model: DomainClassifier, split: data_mod.ImageData, batch: int = 1000) -> float:
    model.eval()
    dev = next(model.parameters()).device
    correct = 0
    for xb, yb in zip(split.images.split(batch), split.labels.split(batch)):
        correct += (model(xb.to(dev)).argmax(1).cpu() == yb).sum().item()
    return correct / len(split)


@torch.no_grad()
def _fit_feature_standardization(model: DomainClassifier, split: data_mod.ImageData) -> None:
    model.eval()
    dev = next(model.parameters()).device
    feats = torch.cat([model.features_and_logits(xb.to(dev))[0].double() for xb in split.images.split(1000)])
    model.feat_mean.copy_(feats.mean(0).float())
    model.feat_std.copy_(feats.std(0).clamp_min(1e-6).float())


def train_classifier(dataset: str, train_set: data_mod.ImageData, test_set: data_mod.ImageData, epochs: int = 3,
                     seed: int = 0, device: str = "cpu", out: Path | None = None) -> dict:
    """Train the domain classifier with Adam and light translation augmentation; save weights + a card
    naming the data it learned (dataset, classes, a fingerprint of the training images)."""
    if tuple(train_set.images.shape[2:]) != (28, 28):
        raise StabgenError(f"the domain classifier takes 28×28 images; {dataset} has "
                           f"{tuple(train_set.images.shape[2:])} (its metrics use Inception features instead)")
    torch.manual_seed(seed)
    classes = int(max(train_set.labels.max(), test_set.labels.max())) + 1
    model = DomainClassifier(num_classes=classes).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = max(1, len(train_set) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=epochs * batches)
    g = torch.Generator().manual_seed(seed)
    t0 = time.time()
    with progress.task(f"train the {dataset} classifier", total=epochs * batches) as bar:
        for ep in range(epochs):
            model.train()
            perm = torch.randperm(len(train_set), generator=g)
            for i in range(batches):
                idx = perm[i * 128:(i + 1) * 128]
                xb, yb = train_set.images[idx], train_set.labels[idx]
                # random shift by up to 2 pixels: cheap augmentation that helps generalization
                dx, dy = torch.randint(-2, 3, (2,), generator=g).tolist()
                xb = torch.roll(xb, shifts=(dy, dx), dims=(2, 3))
                loss = F.cross_entropy(model(xb.to(device)), yb.to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                bar.advance()
            acc = accuracy(model, test_set)
            log.info(f"epoch {ep + 1}/{epochs}: test accuracy {acc:.4f} ({time.time() - t0:.0f}s)")
    _fit_feature_standardization(model, train_set)
    out = out or weights_path(dataset)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.cpu().state_dict(), out)
    import hashlib

    card = {"dataset": dataset, "classes": classes, "train_images": len(train_set),
            "train_sha256": hashlib.sha256(train_set.images.cpu().numpy().tobytes()).hexdigest()[:16],
            "test_accuracy": acc, "epochs": epochs, "seed": seed,
            "train_seconds": round(time.time() - t0, 1), "device": device,
            "command": f"bench train-classifier --dataset {dataset} --epochs {epochs} --seed {seed}"}
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    return card
