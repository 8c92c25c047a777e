"""Kaggle CIFAR-10 (book §14.13): ResNet-18 on the competition's PNGs, then submission.csv.

    d2ljax train kaggle_cifar10 --workdir runs/kaggle_cifar10      # the book's demo setting
    d2ljax train kaggle_cifar10:cpu --workdir runs/kaggle_cifar10  # a narrower net, 10 epochs
    d2ljax train kaggle_cifar10 --workdir runs/kaggle_cifar10_full \\
        --set data.kwargs.root=PATH/TO/cifar-10 --set data.batch_size=128   # the competition

Book settings (demo): ``d2l.resnet18(10, 3)`` (``resnet18_small``), SGD momentum 0.9, lr 2e-4,
weight decay 5e-4 (here on weights, not biases or batch-norm scales), the rate times 0.9 every
4 epochs (``lr_period``, ``lr_decay``: ``StepLR``, a staircase exponential schedule over the
29 steps of an epoch), batch 32 (128 on the full data), 20 epochs; ``reorg_train_valid`` with
valid_ratio 0.1 (900 train / 100 valid of the 1,000-image sample). Training images: random
resized crop (scale 0.64-1, ratio 1; the book first resizes to 40 px, here the crop is taken from
the 32 px image) and a left-right flip, on the device in the training step; the book's
per-channel ``Normalize`` is left out (batch norm follows the first convolution).
With a workdir, the trained model's predictions on the test PNGs are written to
``submission.csv`` (``id,label``). The book's final run trains on train + valid first:
``--set data.kwargs.train_on=train_valid --set data.val_split=none``. On the full data (the
competition's train.7z/test.7z unpacked next to trainLabels.csv) the schedule's
``transition_steps`` is 4 epochs of 352 steps at batch 128: set it with
``--set optimizer.schedule.transition_steps=1408``.
CPU setting: ``width`` 16 (702,218 parameters), 10 epochs.
"""

from d2ljax.configs.common import experiment

AUGMENT = [
    {"name": "random_resized_crop", "size": 32, "scale": [0.64, 1.0], "ratio": [1.0, 1.0]},
    {"name": "flip_left_right", "probability": 0.5},
]
STEPS_PER_EPOCH = 29  # 900 training images, batch 32 (the last batch padded)


def get_config(variant=None):
    cfg = experiment(
        description=__doc__.splitlines()[0],
        dataset="kaggle_cifar10",
        data_kwargs={"valid_ratio": 0.1},
        val_split="valid",
        batch_size=32,
        model="resnet18_small",
        model_kwargs=dict(num_classes=10, in_channels=3),
        optimizer="momentum",
        lr=2e-4,
        weight_decay=5e-4,
        schedule={
            "name": "exponential",
            "decay_rate": 0.9,
            "transition_steps": 4 * STEPS_PER_EPOCH,
            "staircase": True,
        },
        epochs=20,
        cpu={"model.kwargs": dict(num_classes=10, in_channels=3, width=16), "epochs": 10},
        smoke_limit=256,
        variant=variant,
    )
    cfg.optimizer.kwargs = {"momentum": 0.9}
    cfg.data.augment = list(AUGMENT)
    return cfg
