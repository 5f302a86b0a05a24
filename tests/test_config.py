"""Configs, the registry idiom and atomic writes."""

import dataclasses

import pytest

from speechunits.config import apply_overrides, from_dict, load_yaml, save_yaml, to_dict
from speechunits.fileio import atomic_open
from speechunits.registry import Registry


@dataclasses.dataclass
class Inner:
    rate: float = 0.1
    name: str = "x"


@dataclasses.dataclass
class Outer:
    dim: int = 4
    sizes: tuple = (1, 2)
    inner: Inner = dataclasses.field(default_factory=Inner)
    maybe: Inner | None = None


def test_round_trip_through_dict_and_yaml(tmp_path):
    cfg = Outer(dim=8, inner=Inner(rate=0.5))
    assert from_dict(Outer, to_dict(cfg)) == cfg
    save_yaml(cfg, tmp_path / "c.yaml")
    assert from_dict(Outer, load_yaml(tmp_path / "c.yaml")) == cfg


def test_dotted_overrides_parse_values_like_yaml():
    cfg = apply_overrides(Outer(), ["dim=16", "inner.rate=2e-3", "inner.name=abc", "sizes=[3, 4]"])
    assert cfg == Outer(dim=16, sizes=(3, 4), inner=Inner(rate=0.002, name="abc"))
    assert apply_overrides(Outer(), ["maybe.rate=0.3"]).maybe == Inner(rate=0.3)


def test_unknown_keys_are_errors():
    with pytest.raises(KeyError, match="inner.rat"):
        from_dict(Outer, {"inner": {"rat": 1}})
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides(Outer(), ["dim"])


def test_registry_lists_known_names():
    reg = Registry("widget")

    @reg.register("a")
    class A:
        pass

    assert reg.get("a") is A
    with pytest.raises(KeyError, match="known: a"):
        reg.get("b")
    with pytest.raises(KeyError, match="already registered"):
        reg.register("a")(A)


def test_atomic_open_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_open(target) as f:
            f.write("partial")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with atomic_open(target) as f:
        f.write("whole")
    assert target.read_text() == "whole"


def test_float_fields_accept_yaml_exponent_strings(tmp_path):
    (tmp_path / "c.yaml").write_text("inner:\n  rate: 1e-4\n")
    assert from_dict(Outer, load_yaml(tmp_path / "c.yaml")).inner.rate == 1e-4
    with pytest.raises(ValueError, match="inner.rate"):
        from_dict(Outer, {"inner": {"rate": "fast"}})


def test_atomic_files_get_umask_permissions(tmp_path):
    """Not mkstemp's 0600: what a plain open() would give under the process umask."""
    with atomic_open(tmp_path / "f.txt") as f:
        f.write("x")
    with open(tmp_path / "plain.txt", "w") as f:
        f.write("x")
    mode = lambda p: p.stat().st_mode & 0o777  # noqa: E731
    assert mode(tmp_path / "f.txt") == mode(tmp_path / "plain.txt")


def test_a_field_marked_omit_if_default_is_left_out_of_records_at_its_default():
    """A setting added after records were written (OMIT_IF_DEFAULT) is absent from to_dict while it
    holds its default, so older records still compare equal (keep_settings), and from_dict fills it."""
    from speechunits.config import OMIT_IF_DEFAULT
    from speechunits.frontends.pipeline import FeaturePipelineConfig, feature_preset

    @dataclasses.dataclass
    class Cfg:
        a: int = 1
        added: float = dataclasses.field(default=0.0, metadata=OMIT_IF_DEFAULT)

    assert to_dict(Cfg()) == {"a": 1}
    assert to_dict(Cfg(added=2.5)) == {"a": 1, "added": 2.5}
    assert from_dict(Cfg, {"a": 3}) == Cfg(3, 0.0) and from_dict(Cfg, to_dict(Cfg(added=2.5))) == Cfg(added=2.5)
    # a feature pipeline recorded before delta_balance existed equals today's record of the same settings
    before = {"frontend": "mfcc", "frontend_config": {}, "deltas": 2, "delta_window": 2, "cmvn": "speaker",
              "norm_vars": False}
    assert to_dict(feature_preset("mfcc_dd", ["cmvn=speaker"])) == before
    assert to_dict(from_dict(FeaturePipelineConfig, before)) == before
    assert to_dict(feature_preset("mfcc_dd", ["delta_balance=1"]))["delta_balance"] == 1.0
