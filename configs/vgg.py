"""VGG-11 with a quarter of the channels (book §8.2, the variant the book trains).

    d2ljax train vgg                # book setting (GPU/TPU)
    d2ljax train vgg:cpu            # 32x32, 2 epochs

Book settings: arch ((1,16),(1,32),(2,64),(2,128),(2,128)), resize 224, batch 128, lr 0.01,
10 epochs. Full-width VGG-11 is registered as "vgg11".
"""

from d2ljax.configs.common import experiment


def get_config(variant=None):
    return experiment(
        description=__doc__.splitlines()[0],
        dataset="fashion_mnist",
        batch_size=128,
        model="vgg",
        model_kwargs=dict(input_size=224),
        resize=224,
        lr=0.01,
        epochs=10,
        cpu={"data.resize": 32, "model.kwargs.input_size": 32, "epochs": 2},
        variant=variant,
    )
