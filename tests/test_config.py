import pytest

from d2ljax.cli import list_experiments, load_config
from d2ljax.config import Config, ConfigError, apply_overrides, parse_value


def cfg():
    return Config(
        model=dict(name="mlp", kwargs={}),
        optimizer=dict(learning_rate=0.1, grad_clip=None),
        epochs=10,
        flag=True,
        data=dict(resize=None, kwargs={}),
    )


def test_attribute_access_and_typed_overrides():
    c = apply_overrides(
        cfg(),
        [
            "optimizer.learning_rate=0.05",
            "epochs=3",
            "flag=false",
            "optimizer.grad_clip=1",
            "model.kwargs.num_hiddens=128",
        ],
    )
    assert c.optimizer.learning_rate == 0.05 and c.epochs == 3 and c.flag is False
    assert c.optimizer.grad_clip == 1 and c.model.kwargs.num_hiddens == 128
    assert cfg().epochs == 10  # overrides copy


def test_int_float_coercion():
    c = apply_overrides(cfg(), ["optimizer.learning_rate=1", "epochs=4.0"])
    assert isinstance(c.optimizer.learning_rate, float) and c.epochs == 4
    with pytest.raises(ConfigError, match="integer"):
        apply_overrides(cfg(), ["epochs=2.5"])
    with pytest.raises(ConfigError, match="`epochs` must be an integer, got .lots."):
        apply_overrides(cfg(), ["epochs=lots"])


def test_unknown_key_lists_valid_ones():
    with pytest.raises(ConfigError) as e:
        apply_overrides(cfg(), ["optimizer.lr=0.1"])
    msg = str(e.value)
    assert "unknown config key 'optimizer.lr'" in msg
    assert "optimizer.learning_rate" in msg and "epochs" in msg
    with pytest.raises(ConfigError, match="Did you mean epochs"):
        apply_overrides(cfg(), ["epoch=3"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(cfg(), ["epochs"])
    with pytest.raises(AttributeError, match="unknown config key"):
        cfg().nope  # noqa: B018


def test_parse_value():
    assert parse_value("none") is None
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("{'a': 1}") == {"a": 1}
    assert parse_value("adam") == "adam"


def test_every_experiment_loads_with_every_variant():
    names = list_experiments()
    assert "softmax_regression" in names and "common" not in names
    for name, desc in names.items():
        assert desc, f"{name} has no description"
        for variant in ("", ":smoke"):
            c = load_config(name + variant)
            assert c.epochs >= 1 and c.model.name and c.data.name


def test_unknown_experiment_and_variant():
    with pytest.raises(ConfigError, match="Known experiments: .*softmax_regression"):
        load_config("softmax_regresion")
    with pytest.raises(ConfigError, match="unknown variant"):
        load_config("softmax_regression:huge")


def test_config_from_a_file(tmp_path):
    f = tmp_path / "mine.py"
    f.write_text(
        "from d2ljax.configs.softmax_regression import get_config as base\n"
        "def get_config(variant=None):\n    c = base(variant)\n    c.epochs = 2\n"
        "    return c\n"
    )
    assert load_config(str(f)).epochs == 2
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "missing.py"))
