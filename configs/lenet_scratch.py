"""LeNet-5 on the from-scratch convolution and pooling of §7.2-7.5 (slower; same numbers).

    d2ljax train lenet_scratch

Same settings as lenet; the scratch layers equal lax.conv / avg_pool numerically (tested).
"""

from d2ljax.configs.common import experiment


def get_config(variant=None):
    return experiment(
        description=__doc__.splitlines()[0],
        dataset="fashion_mnist",
        batch_size=128,
        model="lenet_scratch",
        lr=0.1,
        epochs=10,
        variant=variant,
    )
