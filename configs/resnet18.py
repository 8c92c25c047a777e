"""ResNet-18 (book §8.6) on Fashion-MNIST at 96x96.

    d2ljax train resnet18           # book setting (GPU/TPU)
    d2ljax train resnet18:cpu       # native 28x28, 2 epochs

Book settings: resize 96, batch 128, SGD lr 0.01, 10 epochs; 11,178,378 params.
CPU setting measured on a 2-core CPU (shared with other jobs, ~20 min/epoch): val accuracy 0.843
after epoch 1, 0.873 after epoch 2.
"""

from d2ljax.configs.common import experiment


def get_config(variant=None):
    return experiment(
        description=__doc__.splitlines()[0],
        dataset="fashion_mnist",
        batch_size=128,
        model="resnet18",
        resize=96,
        lr=0.01,
        epochs=10,
        cpu={"data.resize": None, "epochs": 2},
        variant=variant,
    )
