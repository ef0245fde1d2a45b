"""The KmsKey CRD: examples validate against its schema, and it never drifts from kms_core's algorithm
registry (its algorithm enum and the usage/algorithm rule are the registry's Infisical names)."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from kms_core.algorithms import ALGORITHMS, Dialect, is_compatible
from kms_core.model import Algorithm, KeyUsage

ROOT = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((ROOT / "crds" / "kmskeys.kubekms.io.yaml").read_text())
EXAMPLES = sorted((ROOT / "crds" / "examples").glob("*.yaml"))
VERSION = CRD["spec"]["versions"][0]
SCHEMA = VERSION["schema"]["openAPIV3Schema"]
SPEC = SCHEMA["properties"]["spec"]
CLAUSE = re.compile(r"\(self\.keyUsage == '([^']+)' && self\.algorithm in \[([^\]]*)\]\)")


def to_json_schema(node: Any) -> Any:
    """The structural schema as plain JSON Schema: x-kubernetes-* extensions dropped."""
    if isinstance(node, dict):
        return {k: to_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if isinstance(node, list):
        return [to_json_schema(v) for v in node]
    return node


def validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(to_json_schema(SCHEMA), format_checker=jsonschema.FormatChecker())


def example(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


def compat_rule() -> str:
    rules = [v["rule"] for v in SPEC["x-kubernetes-validations"] if "self.keyUsage ==" in v["rule"]]
    assert len(rules) == 1, "exactly one usage/algorithm compatibility rule"
    return str(rules[0])


def slug_rule() -> str:
    (rule,) = [v["rule"] for v in SCHEMA["x-kubernetes-validations"] if "metadata.name" in v["rule"]]
    return str(rule)


def test_identity_scope_and_names() -> None:
    assert CRD["metadata"]["name"] == "kmskeys.kubekms.io"
    assert CRD["spec"]["group"] == "kubekms.io"
    assert CRD["spec"]["scope"] == "Namespaced"
    names = CRD["spec"]["names"]
    assert (names["kind"], names["plural"], names["singular"]) == ("KmsKey", "kmskeys", "kmskey")
    assert "kmsk" in names["shortNames"]
    assert VERSION["name"] == "v1alpha1" and VERSION["served"] and VERSION["storage"]
    assert VERSION["subresources"] == {"status": {}}
    assert [c["name"] for c in VERSION["additionalPrinterColumns"]] == [
        "Usage",
        "Algorithm",
        "Version",
        "Ready",
        "Next-Rotation",
        "Age",
    ]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_validates(path: Path) -> None:
    doc = example(path)
    errors = [e.message for e in validator().iter_errors(doc)]
    assert errors == []
    assert (doc["apiVersion"], doc["kind"]) == ("kubekms.io/v1alpha1", "KmsKey")
    assert is_compatible(KeyUsage(doc["spec"]["keyUsage"]), Algorithm(doc["spec"]["algorithm"]))
    assert re.fullmatch(r"^[a-z0-9]+(-[a-z0-9]+)*$", doc["metadata"]["name"])


def test_examples_cover_every_usage() -> None:
    usages = {example(p)["spec"]["keyUsage"] for p in EXAMPLES}
    assert usages == {u.value for u in KeyUsage}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("algorithm", "AES_256_GCM"),
        ("keyUsage", "encrypt"),
        ("description", "x" * 501),
        ("deletionPolicy", "Orphan"),
        ("keyId", "not-a-uuid"),
        ("keyId", "0F0E0D0C-0B0A-4908-8706-050403020100"),
        ("disabled", "yes"),
    ],
)
def test_schema_rejects(field: str, value: Any) -> None:
    doc = example(EXAMPLES[0])
    doc["spec"][field] = value
    assert list(validator().iter_errors(doc)), f"{field}={value!r} should be rejected"


def test_schema_accepts_adoption_and_limits() -> None:
    doc = example(EXAMPLES[0])
    doc["spec"].update(
        keyId="0f0e0d0c-0b0a-4908-8706-050403020100", description="x" * 500, deletionPolicy="Delete"
    )
    assert list(validator().iter_errors(doc)) == []


def test_enums_match_kms_core() -> None:
    assert SPEC["properties"]["keyUsage"]["enum"] == [u.value for u in KeyUsage]
    # The CRD lists every stored algorithm: the Infisical names, then the Transit-only types under
    # their stored values (a key created through Transit is a KmsKey too).
    enum = SPEC["properties"]["algorithm"]["enum"]
    assert enum == [a.value for a in Algorithm]
    infisical = [s.wire[Dialect.INFISICAL] for s in ALGORITHMS if Dialect.INFISICAL in s.wire]
    assert enum[: len(infisical)] == infisical
    assert enum[len(infisical) :] == ["chacha20-poly1305", "RSA_2048", "RSA_3072"]
    assert SPEC["properties"]["deletionPolicy"]["enum"] == ["Retain", "Delete"]
    assert SPEC["properties"]["deletionPolicy"]["default"] == "Retain"
    assert SPEC["properties"]["exportable"]["default"] is False


def test_compatibility_rule_lists_exactly_the_allowed_pairs() -> None:
    rule = compat_rule()
    clauses = {usage: [a.strip().strip("'") for a in algs.split(",")] for usage, algs in CLAUSE.findall(rule)}
    registry = {
        u.value: [s.algorithm.value for s in ALGORITHMS if u in s.usages] for u in KeyUsage
    }
    assert clauses == registry
    assert CLAUSE.sub("", rule).replace("||", "").strip() == "", "nothing but the listed clauses"


def test_compatibility_rule_evaluates_like_kms_core() -> None:
    # The rule is a plain boolean expression; evaluated in Python it must agree with kms_core on
    # every (usage, algorithm) pair, so a typo in either place fails here.
    expression = compat_rule().replace("&&", " and ").replace("||", " or ")
    expression = expression.replace("self.keyUsage", "usage").replace("self.algorithm", "algorithm")
    code = compile(expression, "<cel>", "eval")
    for usage, alg in itertools.product(KeyUsage, Algorithm):
        verdict = eval(code, {"__builtins__": {}}, {"usage": usage.value, "algorithm": alg.value})
        assert verdict == is_compatible(usage, alg), (usage, alg)


def test_immutability_rules() -> None:
    props = SPEC["properties"]
    for name in ("keyUsage", "algorithm", "exportable", "derived", "convergentEncryption"):
        assert {"rule": "self == oldSelf", "message": f"{name} is immutable"} in props[name][
            "x-kubernetes-validations"
        ]
    key_id_rules = [v["rule"] for v in SPEC["x-kubernetes-validations"] if "oldSelf.keyId" in v["rule"]]
    assert key_id_rules == ["!has(oldSelf.keyId) || (has(self.keyId) && self.keyId == oldSelf.keyId)"]


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("a1-b2", True),
        ("a" * 32, True),
        ("a" * 33, False),
        ("a--b", False),
        ("-ab", False),
        ("Ab", False),
        ("", False),
    ],
)
def test_name_rule(name: str, ok: bool) -> None:
    rule = slug_rule()
    size = int(re.search(r"size\(\) <= (\d+)", rule).group(1))  # type: ignore[union-attr]
    pattern = re.search(r"matches\('([^']+)'\)", rule).group(1)  # type: ignore[union-attr]
    assert (len(name) <= size and re.fullmatch(pattern, name) is not None) is ok


def test_status_schema_has_the_fields_the_api_reads() -> None:
    status = SCHEMA["properties"]["status"]["properties"]
    for field in (
        "keyId",
        "version",
        "publicKey",
        "secretName",
        "conditions",
        "observedGeneration",
        "orphaned",
    ):
        assert field in status
    condition = status["conditions"]["items"]["properties"]
    assert set(condition) >= {
        "type",
        "status",
        "reason",
        "message",
        "lastTransitionTime",
        "observedGeneration",
    }


# -- lifecycle fields (issue 13) -----------------------------------------------------------------


def rotation_rule() -> tuple[str, str]:
    prop = SPEC["properties"]["rotationPeriod"]
    (rule,) = prop["x-kubernetes-validations"]
    return str(prop["pattern"]), str(rule["rule"])


@pytest.mark.parametrize(
    ("value", "ok"),
    [("24h", True), ("90d", True), ("1h", True), ("1h30m", True), ("5400s", True), ("3600s", True),
     ("60m", True), ("59m", False), ("0h30m", False), ("0d", False), ("1.5h", False), ("-1h", False),
     ("1d12h", False), ("h", False), ("7", False), ("24H", False)],
)
def test_rotation_period_syntax_is_a_subset_of_the_core_parser(value: str, ok: bool) -> None:
    """The CRD's pattern + CEL rule (evaluated as the emulator does) accept exactly the durations
    of at least an hour that kms_core.lifecycle.parse_duration reads the same way: the operator
    never meets a rotationPeriod the API server accepted but the core reads differently."""
    from kms_core.errors import BadRequest
    from kms_core.lifecycle import MIN_ROTATION_PERIOD, parse_duration
    from kube.validation import go_duration, rule_for

    pattern, rule = rotation_rule()
    accepted = re.search(pattern, value) is not None and rule_for(rule)(value, None)
    assert accepted is ok
    if accepted:
        seconds = parse_duration(value)
        assert seconds >= MIN_ROTATION_PERIOD
        if not value.endswith("d"):
            assert go_duration(value) == seconds  # what CEL's duration() reads
    else:
        try:
            too_short = parse_duration(value) < MIN_ROTATION_PERIOD
        except BadRequest:
            too_short = True
        assert too_short or value in ("1.5h", "1d12h", "7"), "only documented exclusions"


def test_every_lifecycle_field_is_explained() -> None:
    for name in ("rotationPeriod", "minDecryptionVersion", "minEncryptionVersion", "minAvailableVersion",
                 "deletionAllowed"):
        assert len(SPEC["properties"][name]["description"]) > 40, name
    status = SCHEMA["properties"]["status"]["properties"]
    for name in ("nextRotationTime", "lastRotationTime", "versions", "policy"):
        assert status[name]["description"], name
    states = status["versions"]["items"]["properties"]["state"]["enum"]
    from kms_core.lifecycle import VersionState

    assert states == [s.value for s in VersionState]


# -- Transit's derived keys (issue 14) -----------------------------------------------------------


FLAG_RULE = re.compile(r"!has\(self\.(\w+)\) \|\| !self\.\1 \|\| self\.algorithm in \[([^\]]*)\]")


def derivation_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = SPEC["x-kubernetes-validations"]
    return [v for v in rules if "derived" in v["rule"] or "convergent" in v["rule"]]


def test_derivation_fields_default_false_and_are_explained() -> None:
    for name in ("derived", "convergentEncryption"):
        prop = SPEC["properties"][name]
        assert (prop["type"], prop["default"]) == ("boolean", False)
        assert "context" in prop["description"] and len(prop["description"]) > 80, name
    assert "derived, convergentEncryption" in SPEC["description"]


def test_derivation_rules_name_exactly_the_derivable_algorithms() -> None:
    """The algorithm lists in the rules are kms_core's (`is_derivable`; AEADs for convergent)."""
    from kms_core.algorithms import AEADS, spec_of
    from kms_core.derivation import is_derivable

    lists = {}
    for rule in derivation_rules():
        found = FLAG_RULE.search(rule["rule"])
        if found:
            lists[found.group(1)] = [a.strip().strip("'") for a in found.group(2).split(",")]
            assert rule["fieldPath"] == f".{found.group(1)}"
            assert rule["message"].startswith(f"{found.group(1)} is supported for ")
    assert lists == {
        "derived": [a.value for a in Algorithm if is_derivable(a)],
        "convergentEncryption": [a.value for a in Algorithm if spec_of(a).primitive in AEADS],
    }


def test_derivation_rules_evaluate_like_kms_core() -> None:
    """Every (algorithm, derived, convergent) triple: the CRD's rules, evaluated as the emulator
    does, accept exactly what kms_core.derivation.check_derivable accepts."""
    from kms_core.derivation import check_derivable
    from kms_core.errors import BadRequest
    from kube.validation import rule_for

    rules = [rule_for(" ".join(r["rule"].split())) for r in derivation_rules()]
    assert len(rules) == 3
    for alg, derived, convergent in itertools.product(Algorithm, (False, True), (False, True)):
        spec = {"algorithm": alg.value, "derived": derived, "convergentEncryption": convergent}
        try:
            check_derivable(alg, derived, convergent)
            allowed = True
        except BadRequest:
            allowed = False
        assert all(rule(spec, None) for rule in rules) is allowed, spec
        if not convergent:  # an absent field reads as its default (false)
            bare = {"algorithm": alg.value, **({"derived": True} if derived else {})}
            assert all(rule(bare, None) for rule in rules) is allowed, bare
