"""Local training of a ViT-Tiny-shaped timm model with LoRA (rank 8, alpha 16) on q and v:
the reference for flotilla's pool throughput on imported backbones (issue 21).

The model is timm's `vit_tiny_patch16_224` (dim 192, depth 12, heads 3, MLP 768) at the
given image and patch size with a fresh 10-class head; everything but the LoRA factors and
the head is frozen. LoRA is added to the q and v thirds of timm's fused qkv projection.
Training: `--clients` clients of `--per-client` images each, one epoch, batch 32, SGD
lr 0.05, as flotilla's pool trains a round of W1-like jobs. Inputs are random (the work
does not depend on them). Run from the repository root:

    python3 benches/reference/vit_tiny.py --side 32 --patch 4 [--threads 2]
    python3 benches/reference/vit_tiny.py --side 224 --patch 16

It prints the training throughput in images per second over the whole loop.
"""

import argparse
import time

import timm
import torch
import torch.nn as nn
import torch.nn.functional as F


class LoraQkv(nn.Module):
    """timm's fused qkv plus low-rank updates of its q and v outputs."""

    def __init__(self, qkv, rank=8, alpha=16.0):
        super().__init__()
        self.qkv = qkv
        d = qkv.in_features
        self.d = d
        self.scale = alpha / rank
        self.a_q = nn.Parameter(torch.randn(d, rank) / rank)
        self.b_q = nn.Parameter(torch.zeros(rank, d))
        self.a_v = nn.Parameter(torch.randn(d, rank) / rank)
        self.b_v = nn.Parameter(torch.zeros(rank, d))

    def forward(self, x):
        y = self.qkv(x)
        dq = (x @ self.a_q @ self.b_q) * self.scale
        dv = (x @ self.a_v @ self.b_v) * self.scale
        return y + torch.cat([dq, torch.zeros_like(dq), dv], dim=-1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--side", type=int, default=32)
    p.add_argument("--patch", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--per-client", type=int, default=80)
    p.add_argument("--batch", type=int, default=32)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, img_size=a.side, patch_size=a.patch,
        num_classes=10)
    for param in model.parameters():
        param.requires_grad_(False)
    for blk in model.blocks:
        blk.attn.qkv = LoraQkv(blk.attn.qkv)
    for param in model.head.parameters():
        param.requires_grad_(True)
    model.train()
    x = torch.randn(a.per_client, 3, a.side, a.side)
    y = torch.randint(0, 10, (a.per_client,))
    images = 0
    start = time.perf_counter()
    for _ in range(a.clients):
        trainable = [q for q in model.parameters() if q.requires_grad]
        opt = torch.optim.SGD(trainable, lr=0.05)
        for i in range(0, a.per_client, a.batch):
            xb, yb = x[i:i + a.batch], y[i:i + a.batch]
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
            images += len(xb)
    wall = time.perf_counter() - start
    print(f"side {a.side} patch {a.patch}: {images} images in {wall:.2f} s, "
          f"{images / wall:.1f} images/s ({a.threads} threads, torch {torch.__version__}, "
          f"timm {timm.__version__})")


if __name__ == "__main__":
    main()
