"""d2ljax: the Dive into Deep Learning course in JAX/Flax NNX.

Subpackages follow the layout of the book: ``data`` (datasets, input pipeline), ``nn`` (scratch
building blocks), ``models`` (every course model as an NNX module), ``optim`` (scratch optimizers
as optax transformations), ``train`` (pure jitted steps, ``fit``, checkpoints), ``parallel``.
"""

__version__ = "0.1.0"
