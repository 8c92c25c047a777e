"""Image augmentation (book §14.1): ResNet-18 on CIFAR-10 with random left-right flips.

    d2ljax train augment_cifar10        # book setting (GPU/TPU; needs cifar-10-python.tar.gz)
    d2ljax train augment_cifar10:cpu    # the 1,000 Kaggle CIFAR-10 PNGs (900 train / 100 valid)

Book settings: ``d2l.resnet18(10, 3)`` (the 3x3-stem ResNet-18 of §13.6, ``resnet18_small``,
11,176,970 parameters), Xavier init, Adam lr 0.001, batch 256, 10 epochs; training images flipped
left-right with probability 0.5 (``RandomHorizontalFlip``), test images as they are. The
augmentation runs on the device inside the compiled training step, one key per example from
(seed, step), so ``--resume`` reproduces it; evaluation is never augmented. Drop it with
``--set data.augment=none`` to compare; add others from ``d2ljax.data.augment.AUGMENTATIONS``,
e.g. ``--set 'data.augment=[{"name": "flip_left_right"}, {"name": "random_resized_crop",
"size": 32, "scale": [0.64, 1.0], "ratio": [1.0, 1.0]}]'``.
CPU setting: the 1,000-image Kaggle sample (the book's ``reorg_train_valid`` split, valid_ratio
0.1), batch 128, 10 epochs, the network at ``width`` 16 (702,218 parameters; the full width takes
minutes per epoch of 900 images on a 2-core CPU).
"""

from d2ljax.configs.common import experiment

FLIP = [{"name": "flip_left_right", "probability": 0.5}]


def get_config(variant=None):
    cfg = experiment(
        description=__doc__.splitlines()[0],
        dataset="cifar10",
        batch_size=256,
        model="resnet18_small",
        model_kwargs=dict(num_classes=10, in_channels=3),
        optimizer="adam",
        lr=0.001,
        epochs=10,
        cpu={
            "data.name": "kaggle_cifar10",
            "data.kwargs": {"source": "samples", "valid_ratio": 0.1},
            "data.val_split": "valid",
            "data.batch_size": 128,
            "model.kwargs": dict(num_classes=10, in_channels=3, width=16),
        },
        smoke_limit=256,
        variant=variant,
    )
    cfg.data.augment = list(FLIP)
    return cfg
