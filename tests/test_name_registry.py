"""d2ljax.registry: the one name -> object table and the one "did you mean" helper."""

import functools
import inspect

import pytest

from d2ljax.registry import Entry, Registry, UnknownNameError, close_matches, suggest


def test_suggest_formats_and_empty():
    known = ["adam", "adamw", "sgd"]
    assert suggest("adma", known) == " Did you mean adam, adamw?"
    assert suggest("adma", known, quote=True) == " Did you mean 'adam', 'adamw'?"
    assert suggest("adma", known, prefix="Did you mean:") == " Did you mean: adam, adamw?"
    assert suggest("adma", known, n=1) == " Did you mean adam?"
    assert suggest("zzzz", known) == ""
    assert suggest(3, known) == ""  # not a string: no crash
    assert close_matches("sdg", known) == ["sgd"]
    assert close_matches("xyz_lm", ["gru_lm"], cutoff=0.5) == ["gru_lm"]


def test_register_get_names_contains():
    reg: Registry[object] = Registry("widget")

    @reg.register("b")
    def b():
        """Makes a b.

        More text."""
        return "b"

    assert reg.register("a", len, description="length") is len
    assert reg.get("b") is b and reg.get("a") is len
    assert reg.names() == ["a", "b"] and list(reg) == ["a", "b"] and len(reg) == 2
    assert "a" in reg and "c" not in reg and [1] not in reg  # unhashable: just not there
    assert reg.describe() == {"a": "length", "b": "Makes a b."}
    assert isinstance(reg.entry("b"), Entry) and reg.entry("b").name == "b"
    assert reg.pop("a").obj is len and "a" not in reg and reg.pop("a") is None


def test_unknown_name_is_key_and_value_error_with_suggestion():
    reg = Registry("widget")
    for name in ("spanner", "spinner", "hammer"):
        reg.register(name, object())
    with pytest.raises(UnknownNameError) as info:
        reg.get("spaner")
    e = info.value
    assert isinstance(e, KeyError) and isinstance(e, ValueError)
    assert str(e) == (
        "unknown widget 'spaner'. Did you mean spanner, spinner? "
        "Known widgets: hammer, spanner, spinner."
    )  # no quotes around the whole message, as KeyError would add
    assert e.name == "spaner" and e.known == ["hammer", "spanner", "spinner"]
    with pytest.raises(KeyError, match="Known widgets") as info:
        reg.get("qqqqq")
    assert "Did you mean" not in str(info.value)
    with pytest.raises(UnknownNameError, match=r"unknown widget \['x'\]"):
        reg.get(["x"])  # an unhashable name from a config is still a clear error


def test_custom_error_message_and_hint_style():
    class MyError(ValueError):
        pass

    reg = Registry(
        "gadget",
        plural="gadgetry",
        error=MyError,
        message="no {kind} called {name!r} ({known}).{hint}",
        quote=True,
        hint_prefix="Perhaps",
    )
    reg.register("lever", 1)
    with pytest.raises(MyError) as info:
        reg.build("levr")
    assert str(info.value) == "no gadget called 'levr' (lever). Perhaps 'lever'?"
    assert isinstance(reg.unknown("x"), MyError)
    default = Registry("gadget", plural="gadgetry")
    assert "Known gadgetry: ." in str(default.unknown("x"))


def test_defaults_fill_kwargs_unless_given():
    reg = Registry("model")

    def lm(vocab_size=28, *, cell="rnn"):
        return (cell, vocab_size)

    reg.register("rnn_lm", lm, defaults={"cell": "rnn"})
    reg.register("gru_lm", lm, defaults={"cell": "gru"}, description="GRU")
    assert reg.get("gru_lm") is lm  # the object itself, one function for two names
    assert reg.build("gru_lm", vocab_size=5) == ("gru", 5)
    assert reg.build("gru_lm", cell="lstm") == ("lstm", 28)  # a caller's value wins
    assert reg.build("rnn_lm") == ("rnn", 28)
    bound = reg.entry("gru_lm").bind()
    assert isinstance(bound, functools.partial) and bound() == ("gru", 28)
    assert inspect.signature(bound).parameters["cell"].default == "gru"
    assert reg.entry("gru_lm").defaults == {"cell": "gru"}
    with pytest.raises(TypeError):
        reg.entry("gru_lm").defaults["cell"] = "x"  # read-only
    reg.register("plain", len)
    assert reg.entry("plain").bind() is len


def test_duplicates_and_bad_names():
    reg = Registry("model")

    def f():
        pass

    def g():
        pass

    reg.register("f", f, description="one")
    reg.register("f", f, description="two")  # the same object again: replaces (a reload)
    assert reg.describe()["f"] == "two"
    with pytest.raises(ValueError, match="model name 'f' is already registered to .*f"):
        reg.register("f", g)
    reg.register("f", g, overwrite=True)
    assert reg.get("f") is g
    reg.register("n", 1)
    reg.register("n", 1)  # equal values: fine
    with pytest.raises(ValueError, match="already registered"):
        reg.register("n", 2)
    for bad in ("", None, 3):
        with pytest.raises(ValueError, match="non-empty string"):
            reg.register(bad)


def test_loader_runs_once_before_first_lookup():
    calls = []
    reg = Registry("thing", loader=lambda: (calls.append(1), reg.register("x", 1)))
    assert calls == []
    assert "x" in reg and reg.names() == ["x"] and reg.get("x") == 1
    assert calls == [1]


def test_failing_loader_is_retried():
    state = {"fail": True}

    def loader():
        if state["fail"]:
            raise ImportError("not yet")
        reg.register("x", 1)

    reg = Registry("thing", loader=loader)
    with pytest.raises(ImportError):
        reg.names()
    state["fail"] = False
    assert reg.names() == ["x"]


def test_package_lookups_share_the_format():
    """Models, datasets, hub entries, experiments and config keys all say "did you mean"."""
    from d2ljax.cli import load_config
    from d2ljax.config import Config, ConfigError
    from d2ljax.data import DATASETS, hub, load_dataset
    from d2ljax.models import get_model
    from d2ljax.models.registry import MODELS, UnknownModelError

    with pytest.raises(UnknownModelError, match="Did you mean: mlp"):
        get_model("mpl")
    assert isinstance(MODELS, Registry) and "mlp" in MODELS
    with pytest.raises(UnknownNameError, match="known datasets: .*Did you mean fashion_mnist"):
        load_dataset("fashion_mnst")
    assert "fashion_mnist" in DATASETS
    with pytest.raises(hub.UnknownDatasetError, match="Did you mean 'timemachine'"):
        hub.get_entry("timemachin")
    with pytest.raises(ConfigError, match="Did you mean softmax_regression"):
        load_config("sofmax_regression")
    with pytest.raises(ConfigError, match="Did you mean epochs"):
        Config({"epochs": 1}).set("epoch", 2)
