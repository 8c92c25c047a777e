"""AlexNet (book §8.1) on Fashion-MNIST resized to 224x224.

    d2ljax train alexnet            # book setting (GPU/TPU)
    d2ljax train alexnet:cpu        # 68x68 (the smallest AlexNet input is 65), 2 epochs

Book settings: resize 224, batch 128, SGD lr 0.01, 10 epochs, dropout 0.5; 46,764,746 params.
"""

from d2ljax.configs.common import experiment


def get_config(variant=None):
    return experiment(
        description=__doc__.splitlines()[0],
        dataset="fashion_mnist",
        batch_size=128,
        model="alexnet",
        model_kwargs=dict(input_size=224),
        resize=224,
        lr=0.01,
        epochs=10,
        cpu={"data.resize": 68, "model.kwargs.input_size": 68, "epochs": 2},
        variant=variant,
    )
