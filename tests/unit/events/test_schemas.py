"""The CDEvents 0.5.1 schemas Interlock ships: identical to the reference, and used right."""

from __future__ import annotations

import copy

import pytest

from interlock.events import purl
from interlock.events.schemas import EventType, Schemas, bundled, schema_dir
from tests.support.external import cdevents_dir, conformance, conformance_names, schema_errors


def test_the_shipped_schemas_are_the_reference_files_unchanged():
    reference = cdevents_dir() / "schemas"
    shipped = schema_dir()
    names = sorted(p.relative_to(reference).as_posix() for p in reference.rglob("*.json"))
    assert names, f"no schemas under {reference}"
    assert sorted(p.relative_to(shipped).as_posix() for p in shipped.rglob("*.json")) == names
    for name in names:
        assert (shipped / name).read_bytes() == (reference / name).read_bytes(), name


def test_every_conformance_example_is_valid_for_interlock_and_for_plain_jsonschema():
    names = conformance_names()
    assert len(names) >= 40
    for name in names:
        event = conformance(name)
        assert bundled().errors(event) == [], name
        assert schema_errors(event) == [], name


def test_types_come_from_the_schema_files():
    types = bundled().types()
    assert types["pipelinerun.finished"] == "dev.cdevents.pipelinerun.finished.0.3.0"
    assert types["artifact.published"] == "dev.cdevents.artifact.published.0.3.0"
    assert EventType.parse("dev.cdevents.service.rolledback.0.3.0").name == "service.rolledback"
    assert EventType.parse("dev.cdevents.service.rolledback") is None
    assert EventType.parse("com.example.thing.happened.1.0.0") is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda e: e["subject"]["content"].pop("environment"), "subject.content.environment"),
        (lambda e: e["subject"]["content"].update(environment={"id": ""}), "subject.content"),
        (lambda e: e["context"].update(timestamp="yesterday"), "context.timestamp"),
        (lambda e: e["subject"].update(extra=1), "subject.extra"),
        (lambda e: e["context"].pop("id"), "context.id"),
    ],
)
def test_an_invalid_event_names_the_field(change, field):
    event = copy.deepcopy(conformance("incident_detected"))
    change(event)
    found = bundled().errors(event)
    assert found, "expected the change to make the event invalid"
    assert found[0][0].startswith(field), found


def test_a_missing_schema_directory_says_where_to_point(tmp_path):
    with pytest.raises(FileNotFoundError, match="INTERLOCK_CDEVENTS_SCHEMAS"):
        Schemas(tmp_path / "nowhere")


def test_package_urls_round_trip_and_yield_name_version_and_digest():
    digest = "sha256:" + "ab" * 32
    text = purl.build("api", "1.4.2+build.7", digest)
    assert text == f"pkg:generic/api@1.4.2%2Bbuild.7?checksum={digest}"
    parsed = purl.parse(text)
    assert parsed is not None
    assert (parsed.type, parsed.name, parsed.version, parsed.digest()) == (
        "generic",
        "api",
        "1.4.2+build.7",
        digest,
    )
    oci = purl.parse(
        "pkg:oci/myapp@sha256%3A0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d1e8de6817db93427"
        "?repository_url=ghcr.io/acme/myapp&tag=1.4.2"
    )
    assert oci is not None
    assert oci.digest() == "sha256:0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d1e8de6817db93427"
    assert oci.tag() == "1.4.2"
    golang = purl.parse("pkg:golang/mygit.com/myorg/myapp@234fd47e07d1004f0aed9c")
    assert golang is not None
    assert (golang.namespace, golang.name, golang.tag(), golang.digest()) == (
        "mygit.com/myorg",
        "myapp",
        "234fd47e07d1004f0aed9c",
        None,
    )
    assert golang.without_version() == "pkg:golang/mygit.com/myorg/myapp"
    assert purl.parse("mySubject123") is None
    assert purl.parse("pkg:generic") is None
