"""Shared pieces of the experiment configs (not an experiment itself)."""

from __future__ import annotations

from d2ljax.config import Config

VARIANTS = ("smoke", "cpu")


def experiment(
    *,
    description: str,
    model: str,
    dataset: str,
    batch_size: int,
    lr: float,
    epochs: int,
    loss: str = "classification",
    optimizer: str = "sgd",
    model_kwargs: dict | None = None,
    data_kwargs: dict | None = None,
    weight_decay: float = 0.0,
    grad_clip: float | None = None,
    schedule: dict | None = None,
    val_split: str | None = "test",
    resize: int | None = None,
    seed: int = 0,
    kfold: int = 0,
    variant: str | None = None,
    smoke_limit: int = 2048,
    cpu: dict | None = None,
    mesh: dict | None = None,
    precision: str = "float32",
    partition_rules: list | None = None,
    fsdp_min_size: int = 2**14,
) -> Config:
    """A config with every key an experiment can set.

    Variants: ``smoke`` shrinks it to seconds (1 epoch on ``smoke_limit`` examples, at the CPU
    setting's input size); ``cpu`` applies the overrides in ``cpu`` (e.g. ``{"data.resize": None,
    "epochs": 3}``): the documented setting for a model too heavy to train at the book's size on
    a laptop CPU. Without ``cpu`` overrides the ``cpu`` variant is the book setting itself.

    Devices (book ch. 13): ``mesh`` is a mesh shape (default None: data parallel over every
    device, e.g. ``{"data": 2, "fsdp": 4}`` also shards parameters over 4 devices, FSDP);
    ``partition_rules`` ``[(regex, spec)]`` on parameter paths go before the FSDP rule, which
    shards arrays of at least ``fsdp_min_size`` elements; ``precision`` is ``"float32"`` or
    ``"bfloat16"`` (bf16 compute, float32 master parameters). ``steps_per_call`` (None: ``fit``'s
    default) is how many train steps one compiled call runs when the data is on the device.
    """
    cfg = Config(
        description=description,
        model=dict(name=model, kwargs=dict(model_kwargs or {})),
        data=dict(
            name=dataset,
            batch_size=batch_size,
            eval_batch_size=None,
            resize=resize,
            on_device=True,
            drop_remainder=False,
            val_split=val_split,
            limit=None,
            kwargs=dict(data_kwargs or {}),
        ),
        loss=loss,
        optimizer=dict(
            name=optimizer,
            learning_rate=lr,
            weight_decay=weight_decay,
            grad_clip=grad_clip,
            schedule=schedule,
            kwargs={},
        ),
        epochs=epochs,
        seed=seed,
        checkpoint_every=1,
        on_nonfinite="stop",
        early_stopping=dict(monitor="val_loss", patience=0, min_delta=0.0, mode="min"),
        kfold=kfold,
        mesh=dict(mesh) if mesh else None,
        precision=precision,
        partition=dict(rules=list(partition_rules or []), fsdp_min_size=fsdp_min_size),
        steps_per_call=None,
    )
    if variant in (None, "", "default"):
        return cfg
    for key, value in (cpu or {}).items() if variant in ("cpu", "smoke") else ():
        cfg.set(key, value)
    if variant == "cpu":
        return cfg
    if variant == "smoke":
        cfg.epochs = 1 if not kfold else 2
        cfg.data.limit = smoke_limit
        return cfg
    raise ValueError(f"unknown variant {variant!r}; this experiment has: {', '.join(VARIANTS)}")


def timemachine_lm(
    *,
    description: str,
    model: str,
    lr: float,
    epochs: int,
    num_hiddens: int = 32,
    num_layers: int = 1,
    variant: str | None = None,
) -> Config:
    """The book's character language-model experiment (1.0 edition §9.5.4, reused by §9.6 and
    §10.1-10.3): ``TimeMachine(batch_size=1024, num_steps=32)`` (10000 training and 5000
    validation subsequences), SGD, global-norm gradient clipping at 1, per-token cross-entropy
    with perplexity reported. Only the model, its size, the learning rate and the epochs differ.
    """
    return experiment(
        description=description,
        model=model,
        model_kwargs=dict(num_hiddens=num_hiddens, num_layers=num_layers),
        dataset="timemachine",
        data_kwargs=dict(num_steps=32, num_train=10000, num_val=5000),
        batch_size=1024,
        loss="lm",
        optimizer="sgd",
        lr=lr,
        grad_clip=1.0,
        epochs=epochs,
        val_split="val",
        variant=variant,
    )


def fra_eng_translation(
    *,
    description: str,
    model: str,
    model_kwargs: dict,
    lr: float,
    variant: str | None = None,
) -> Config:
    """The book's English-French translation experiment (1.0 edition §10.7, reused by §11.4 and
    §11.7): ``MTFraEng(batch_size=128)`` (the first 512 pairs for training, the next 128 for
    validation, 9 tokens per sequence), Adam, ``Trainer(max_epochs=30, gradient_clip_val=1)``,
    cross-entropy that ignores padding. Only the model and the learning rate differ.
    """
    return experiment(
        description=description,
        model=model,
        model_kwargs=model_kwargs,
        dataset="fra_eng",
        data_kwargs=dict(num_steps=9, num_train=512, num_val=128),
        batch_size=128,
        loss="seq2seq",
        optimizer="adam",
        lr=lr,
        grad_clip=1.0,
        epochs=30,
        val_split="val",
        smoke_limit=256,
        variant=variant,
    )
