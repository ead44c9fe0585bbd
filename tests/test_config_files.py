"""Reading config files: encodings, YAML mistakes, and unusual configs that are valid.

Each bad file gets exit 2 from `mcastkit validate` and one line naming the file and the line;
each unusual but valid file is accepted.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcastkit.cli import Console, main
from mcastkit.config import ConfigError, load_config
from mcastkit.exit import ExitStatus

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = (ROOT / "config" / "example.yaml").read_text(encoding="utf-8")


def _validate(path: Path) -> tuple[int, str, str]:
    console = Console(out=io.StringIO(), err=io.StringIO())
    status = main(["validate", str(path)], console)
    return status, console.out.getvalue(), console.err.getvalue()


def _line_of(text: str, needle: str, start: int = 0) -> int:
    """1-based line of the first line at or after ``start`` (0-based) that contains ``needle``."""
    lines = text.splitlines()
    return next(i + 1 for i in range(start, len(lines)) if needle in lines[i])


def _copied_region_block() -> tuple[str, int, int]:
    """The example with London's block copied for a new region, its key left as eu-west-2."""
    london = EXAMPLE[EXAMPLE.index("  eu-west-2:\n") : EXAMPLE.index("  ap-northeast-1:\n")]
    text = EXAMPLE.replace("  ap-northeast-1:\n", london.replace("10.20.", "10.40.") + "  ap-northeast-1:\n")
    first = _line_of(text, "  eu-west-2:")
    return text, first, _line_of(text, "  eu-west-2:", first)


def _bad_files() -> list[tuple[str, bytes, int | None, str]]:
    """(id, file content, expected line or None, text the line must contain)."""
    copied, first, second = _copied_region_block()
    octal = EXAMPLE.replace('principal: "333333333333"', "principal: 012345670123")
    broken = EXAMPLE.replace("vpc_cidr: 10.30.0.0/16", "vpc_cidr: [10.30.0.0/16")
    tabbed = EXAMPLE.replace("    vpc_cidr: 10.20.0.0/16", "\tvpc_cidr: 10.20.0.0/16")
    # fmt: off
    return [
        ("repeated-region-key", copied.encode(), second, f"key 'eu-west-2' repeats the key at line {first}"),
        ("repeated-field", EXAMPLE.replace("      ttl: 8\n", "      ttl: 8\n      ttl: 16\n").encode(),
         _line_of(EXAMPLE, "ttl: 8") + 1, "key 'ttl' repeats"),
        ("utf-16", EXAMPLE.encode("utf-16"), 1, "UTF-16; save it as UTF-8"),
        ("binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 3, "NUL byte"),
        ("latin-1", EXAMPLE.replace("example", "\u00e9t\u00e9", 1).encode("latin-1"), 1, "byte 0xe9 is not UTF-8"),
        ("octal-account-id", octal.encode(), _line_of(octal, "principal: 012345670123"),
         'customers[1].principal: 012345670123 is a number to YAML, not an account id'),
        ("unclosed-bracket", broken.encode(), None, "not valid YAML"),
        ("tab-indent", tabbed.encode(), _line_of(tabbed, "\tvpc_cidr"), "not valid YAML"),
        ("empty", b"", 1, "the file is empty"),
        ("only-comments", b"# nothing here\n", 1, "the file is empty"),
        ("a-list", b"- project: venue\n", 1, "not a list"),
        ("field-in-the-wrong-section", EXAMPLE.replace("    capacity:", "    ttl: 8\n    capacity:", 1).encode(),
         _line_of(EXAMPLE, "    capacity:"), "regions.eu-west-2.ttl: unknown field; ttl is a field of relay"),
        ("a-string", b"venue-md\n", 1, "not a str"),
        ("two-documents", (EXAMPLE + "---\nproject: other\n").encode(), None, "expected a single document"),
    ]
    # fmt: on


@pytest.mark.parametrize(
    ("content", "line", "text"), [c[1:] for c in _bad_files()], ids=[c[0] for c in _bad_files()]
)
def test_a_bad_file_is_one_line_with_file_and_line(
    tmp_path: Path, content: bytes, line: int | None, text: str
) -> None:
    path = tmp_path / "estate.yaml"
    path.write_bytes(content)
    status, out, err = _validate(path)
    assert status == ExitStatus.BAD_INPUT
    assert out == "" and "Traceback" not in err
    [message] = err.splitlines()
    where = f"mcastkit: error: {path}:{line if line is not None else ''}"
    assert message.startswith(where), message
    assert text in message, message


def test_a_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "estate.yaml"
    path.write_text(EXAMPLE.replace("vpc_cidr: 10.30.0.0/16", "vpc_cidr: [10.30.0.0/16"), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [problem] = caught.value.problems
    assert problem.line is not None and problem.line >= _line_of(EXAMPLE, "vpc_cidr: 10.30.0.0/16")
    assert "<unicode string>" not in caught.value.render()


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    status, _, err = _validate(tmp_path / "absent.yaml")
    assert status == ExitStatus.BAD_INPUT
    assert (
        err
        == f"mcastkit: error: {tmp_path / 'absent.yaml'}: cannot read the file: No such file or directory\n"
    )


# Valid unusual configs ------------------------------------------------------------------------


def _minimal(**region: Any) -> dict[str, Any]:
    return {
        "project": "solo",
        "provider_account": "111111111111",
        "regions": {
            "us-east-1": {
                "availability_zones": ["us-east-1a"],
                "vpc_cidr": "10.0.0.0/24",
                "subnets": [{"cidr": "10.0.0.0/26", "availability_zone": "us-east-1a", "domain": "feed"}],
                "domains": [
                    {
                        "name": "feed",
                        "source_cidrs": ["10.0.0.0/26"],
                        "groups": [{"name": "g", "address": "239.0.0.1", "port": 5000}],
                    }
                ],
                **region,
            }
        },
    }


def _six_domains() -> dict[str, Any]:
    zones = [f"eu-west-1{z}" for z in "abcdef"]
    return {
        "project": "wide",
        "provider_account": "111111111111",
        "regions": {
            "eu-west-1": {
                "availability_zones": zones,
                "vpc_cidr": "10.1.0.0/16",
                "subnets": [
                    {"cidr": f"10.1.{i}.0/24", "availability_zone": z, "domain": f"d{i}"}
                    for i, z in enumerate(zones)
                ],
                "domains": [
                    {
                        "name": f"d{i}",
                        "source_cidrs": [f"10.1.{i}.0/24"],
                        "groups": [
                            {"name": "g", "address": f"239.1.{i}.1", "port": 5000 + i},
                            {"name": "p", "address": f"239.1.{i}.2", "port": 6000 + i, "probe": True},
                        ],
                    }
                    for i in range(6)
                ],
                # Relay and probe in two zones: 2 hosts in each hold the relay twice and 3 probe tasks.
                "capacity": {"instance_type": "c6in.large", "min": 4, "max": 6},
                "relay": {
                    "domain": "d0",
                    "datacenter_cidrs": ["192.168.0.0/24"],
                    "connect": ["192.168.0.10:7400"],
                    "route_via": "tgw-0123456789abcdef0",
                },
                "probe": {"domain": "d1", "group": "p"},
            }
        },
    }


# fmt: off
VALID: list[tuple[str, str]] = [
    ("one-region-no-customers-no-relay-no-probe", yaml.safe_dump(_minimal())),
    ("static-domain", yaml.safe_dump(_minimal(domains=[{
        "name": "feed", "mode": "static", "source_cidrs": ["10.0.0.0/26"],
        "static_sources": ["eni-0123456789abcdef0"],
        "groups": [{"name": "g", "address": "239.0.0.1", "port": 5000}]}]))),
    ("six-domains-in-six-zones", yaml.safe_dump(_six_domains())),
    ("utf-8-bom", "\ufeff" + EXAMPLE),
    ("anchors-and-merge-keys", EXAMPLE.replace(
        "    capacity: {instance_type: c6in.large, min: 3, max: 4}",
        "    capacity: &hosts {instance_type: c6in.large, min: 3, max: 4}",
    ).replace(
        "    capacity: {instance_type: c6in.large, min: 1, max: 2}",
        "    capacity:\n      <<: *hosts\n      min: 1\n      max: 2",
    )),
    ("connect-mode-relay", EXAMPLE.replace(
        "      datacenter_cidrs: [192.168.40.0/24]\n      ttl: 8",
        "      datacenter_cidrs: [192.168.40.0/24]\n      connect: [192.168.40.10:7400, 192.168.40.11:7400]",
    )),
]
# fmt: on


@pytest.mark.parametrize("text", [v[1] for v in VALID], ids=[v[0] for v in VALID])
def test_an_unusual_config_is_valid(tmp_path: Path, text: str) -> None:
    path = tmp_path / "estate.yaml"
    path.write_bytes(text.encode("utf-8"))
    status, out, err = _validate(path)
    assert (status, err) == (ExitStatus.OK, ""), err
    assert "valid" in out


def test_merge_keys_take_the_anchor_and_override_it(tmp_path: Path) -> None:
    text = dict(VALID)["anchors-and-merge-keys"]
    assert "<<: *hosts" in text
    path = tmp_path / "estate.yaml"
    path.write_text(text, encoding="utf-8")
    tokyo = load_config(path).regions["ap-northeast-1"].capacity
    assert (tokyo.instance_type, tokyo.min, tokyo.max) == ("c6in.large", 1, 2)
