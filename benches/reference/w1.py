"""Workload W1 as a plain single-process PyTorch loop: the reference flotilla's speed is
measured against (issue 7).

The same ViT (patch 4, dim 64, depth 4, heads 4, MLP 128, pre-norm, class token, learned
positions), LoRA rank 4 / alpha 8 on q and v plus a linear head, frozen backbone; 100
clients holding a Dirichlet(0.5) label split of mnist-10k's 8,000 training images (at
least 10 each); 20 FedAvg rounds of 10 clients, 1 local epoch, batch 32, SGD lr 0.05;
evaluation on the 2,000 test images after every round.

The backbone is randomly initialised (flotilla's checkpoint is a Burn file), which
changes the accuracy but not the work. Run from the repository root:

    python3 benches/reference/w1.py [--threads 2] [--data scenarios/data/mnist-10k]

It prints the wall time, the peak RSS, the final accuracy and the local-training
throughput (images/s over the time spent in local training alone).
"""

import argparse
import gzip
import math
import os
import resource
import struct
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(dir):
    def pair(prefix):
        x = read_idx(os.path.join(dir, f"{prefix}-images-idx3-ubyte.gz"))
        y = read_idx(os.path.join(dir, f"{prefix}-labels-idx1-ubyte.gz"))
        x = torch.tensor(x, dtype=torch.float32) / 255.0
        return x, torch.tensor(y, dtype=torch.long)

    return pair("train"), pair("t10k")


def patches(x, p=4):
    n, side, _ = x.shape
    g = side // p
    return x.reshape(n, g, p, g, p).permute(0, 1, 3, 2, 4).reshape(n, g * g, p * p)


class LoraLinear(nn.Module):
    def __init__(self, d_in, d_out, rank=0, alpha=1.0):
        super().__init__()
        self.base = nn.Linear(d_in, d_out)
        self.rank = rank
        if rank:
            self.a = nn.Parameter(torch.randn(d_in, rank) / rank)
            self.b = nn.Parameter(torch.zeros(rank, d_out))
            self.scale = alpha / rank

    def forward(self, x):
        y = self.base(x)
        if self.rank:
            y = y + (x @ self.a @ self.b) * self.scale
        return y


class Block(nn.Module):
    def __init__(self, dim, heads, mlp):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.q = LoraLinear(dim, dim, 4, 8.0)
        self.k = LoraLinear(dim, dim)
        self.v = LoraLinear(dim, dim, 4, 8.0)
        self.o = LoraLinear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp)
        self.fc2 = nn.Linear(mlp, dim)

    def forward(self, x):
        b, t, d = x.shape
        h = self.ln1(x)
        split = lambda y: y.reshape(b, t, self.heads, d // self.heads).transpose(1, 2)
        q, k, v = split(self.q(h)), split(self.k(h)), split(self.v(h))
        att = torch.softmax(q @ k.transpose(2, 3) / math.sqrt(d // self.heads), dim=3)
        x = x + self.o((att @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class Vit(nn.Module):
    def __init__(self, tokens=49, patch_dim=16, dim=64, depth=4, heads=4, mlp=128, classes=10):
        super().__init__()
        self.embed = nn.Linear(patch_dim, dim)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
        self.blocks = nn.ModuleList([Block(dim, heads, mlp) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.embed(x)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])


def trainable(name):
    return name.endswith(".a") or name.endswith(".b") or name.startswith("head.")


def dirichlet_split(labels, clients, alpha, min_samples, rng):
    labels = labels.numpy()
    while True:
        shards = [[] for _ in range(clients)]
        for c in range(labels.max() + 1):
            idx = rng.permutation(np.flatnonzero(labels == c))
            cuts = (np.cumsum(rng.dirichlet([alpha] * clients)) * len(idx)).astype(int)[:-1]
            for shard, part in zip(shards, np.split(idx, cuts)):
                shard.extend(part.tolist())
        if min(len(s) for s in shards) >= min_samples:
            return [np.array(s) for s in shards]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="scenarios/data/mnist-10k")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    (xtr, ytr), (xte, yte) = load(args.data)
    xtr, xte = patches(xtr), patches(xte)
    shards = dirichlet_split(ytr, 100, 0.5, 10, rng)
    model = Vit()
    for name, p in model.named_parameters():
        p.requires_grad_(trainable(name))
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    global_state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    train_seconds, train_images, accuracy = 0.0, 0, 0.0
    for _ in range(args.rounds):
        chosen = rng.choice(100, size=10, replace=False)
        total = sum(len(shards[c]) for c in chosen)
        new_state = {n: torch.zeros_like(v) for n, v in global_state.items()}
        t0 = time.perf_counter()
        for c in chosen:
            params = dict(model.named_parameters())
            with torch.no_grad():
                for n in names:
                    params[n].copy_(global_state[n])
            opt = torch.optim.SGD([params[n] for n in names], lr=0.05)
            order = rng.permutation(shards[c])
            model.train()
            for i in range(0, len(order), 32):
                batch = torch.from_numpy(order[i : i + 32])
                loss = F.cross_entropy(model(xtr[batch]), ytr[batch])
                opt.zero_grad()
                loss.backward()
                opt.step()
            train_images += len(order)
            with torch.no_grad():
                for n in names:
                    new_state[n] += params[n] * (len(shards[c]) / total)
        train_seconds += time.perf_counter() - t0
        global_state = new_state
        params = dict(model.named_parameters())
        model.eval()
        with torch.no_grad():
            for n in names:
                params[n].copy_(global_state[n])
            correct = sum(
                (model(xte[i : i + 500]).argmax(1) == yte[i : i + 500]).sum().item()
                for i in range(0, len(xte), 500)
            )
        accuracy = correct / len(xte)
    wall = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        f"wall {wall:.1f} s, peak RSS {rss / 1e6:.0f} MB, accuracy {accuracy * 100:.2f}%, "
        f"local training {train_images / train_seconds:.0f} images/s "
        f"({args.threads} threads, torch {torch.__version__})"
    )


if __name__ == "__main__":
    main()
