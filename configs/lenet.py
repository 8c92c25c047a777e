"""LeNet-5 (book §7.6): sigmoid, average pooling, on Fashion-MNIST at 28x28.

    d2ljax train lenet

Book settings (they run as they are on a CPU): Xavier init, batch 128, SGD lr 0.1, 10 epochs.
Expected: val accuracy ~0.73 at 10 epochs, as the book's own PyTorch and JAX code reach.
"""

from d2ljax.configs.common import experiment


def get_config(variant=None):
    return experiment(
        description=__doc__.splitlines()[0],
        dataset="fashion_mnist",
        batch_size=128,
        model="lenet",
        lr=0.1,
        epochs=10,
        variant=variant,
    )
