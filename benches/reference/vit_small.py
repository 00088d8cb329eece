"""timm's side of `flotilla bench --only backbone` (issue 44): ViT-S/16 at 224 px.

The model is timm's `vit_small_patch16_224` (dim 384, depth 12, heads 6, MLP 1536) with
random weights and a 10-class head, in eval mode. `--mode eval` forwards `--images`
images (2,000: MNIST's test set in the benchmark) in batches of 250, as flotilla's
evaluation chunks do; `--mode train` does what one round of head-only training on 10
clients does: the features of the 8,000 training and 2,000 test images, then one epoch of
SGD on the head alone (batch 32) and the evaluation through the head. Inputs are random
(the work does not depend on them). Run from the repository root:

    python3 benches/reference/vit_small.py --mode eval --threads 2
    python3 benches/reference/vit_small.py --mode train --threads 2

It prints the wall seconds, images per second through the backbone and the CPU the
process kept busy (200% is both cores of a 2-core machine).
"""

import argparse
import resource
import time

import timm
import torch
import torch.nn.functional as F


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def features(model, images, batch):
    out = []
    with torch.no_grad():
        for s in range(0, images.shape[0], batch):
            out.append(model.forward_head(model.forward_features(images[s:s + batch]),
                                          pre_logits=True))
    return torch.cat(out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["eval", "train"], default="eval")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--batch", type=int, default=250)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=10)
    model.eval()
    n = a.images if a.mode == "eval" else 10_000
    # Generated in batches, so that the input's memory is not counted twice.
    images = torch.rand(n, 3, 224, 224)
    labels = torch.randint(0, 10, (n,))
    wall, cpu = time.perf_counter(), cpu_seconds()
    feats = features(model, images, a.batch)
    if a.mode == "train":
        head = model.head
        opt = torch.optim.SGD(head.parameters(), lr=0.05)
        train = feats[:8000]
        for s in range(0, train.shape[0], 32):
            opt.zero_grad()
            F.cross_entropy(head(train[s:s + 32]), labels[s:s + 32]).backward()
            opt.step()
        with torch.no_grad():
            head(feats[8000:]).argmax(1)
    else:
        with torch.no_grad():
            model.head(feats).argmax(1)
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    print(f"{a.mode}: {n} images in {wall:.1f} s, {n / wall:.1f} images/s, "
          f"{100 * cpu / wall:.0f}% CPU, {a.threads} threads")


if __name__ == "__main__":
    main()
