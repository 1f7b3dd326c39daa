from dataclasses import dataclass, field

import pytest

from common.config import ConfigError, apply_overrides, from_dict, load_config


@dataclass(frozen=True)
class Inner:
    rate: float = 0.1
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outer:
    steps: int = 10
    inner: Inner = field(default_factory=Inner)
    label: str | None = None


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: 5\ninner: {rate: 0.5, names: [a, b]}\n")
    cfg = load_config(Outer, path, ["--inner.rate=2", "--label=x", "steps=7"])
    assert cfg == Outer(steps=7, inner=Inner(rate=2.0, names=("a", "b")), label="x")


def test_unknown_key_names_file_and_field(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("inner: {rte: 0.5}\n")
    with pytest.raises(ConfigError, match=r"c\.yaml\.inner: unknown key\(s\) rte"):
        load_config(Outer, path)


@pytest.mark.parametrize("data, where", [({"steps": "ten"}, "config.steps"), ({"steps": 1.5}, "config.steps"),
                                         ({"inner": {"rate": True}}, "config.inner.rate"),
                                         ({"inner": {"names": "a"}}, "config.inner.names")])
def test_wrong_type_names_field(data, where):
    with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
        from_dict(Outer, data)


def test_override_needs_equals():
    with pytest.raises(ConfigError, match="section.key=value"):
        apply_overrides({}, ["--steps"])


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(Outer, tmp_path / "nope.yaml")
