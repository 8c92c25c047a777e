"""ResNeXt: ResNet-18 layout with grouped-convolution bottleneck blocks (book §8.6.5).

    d2ljax train resnext            # 96x96 like ResNet-18 (GPU/TPU)
    d2ljax train resnext:cpu        # native 28x28, 3 epochs

The book defines the ResNeXt block only; this model stacks it like ResNet-18. Batch 128, lr 0.01.
"""

from d2ljax.configs.common import experiment


def get_config(variant=None):
    return experiment(
        description=__doc__.splitlines()[0],
        dataset="fashion_mnist",
        batch_size=128,
        model="resnext",
        resize=96,
        lr=0.01,
        epochs=10,
        cpu={"data.resize": None, "epochs": 3},
        variant=variant,
    )
