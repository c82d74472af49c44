"""Step output: capped with a truncation marker, secrets masked, readable while running."""

from __future__ import annotations

from interlock.executors.base import LogSink


def test_output_is_kept_up_to_the_cap_then_head_marker_and_tail():
    sink = LogSink(limit=100)
    sink.write("a" * 60)
    assert sink.take() == "a" * 60
    sink.write("b" * 60 + "\n")
    sink.write("the error at the end\n")
    rest, truncated = sink.finish()
    assert truncated
    assert rest.startswith("b" * 40)
    assert "[interlock: output truncated:" in rest
    assert rest.endswith("the error at the end\n")


def test_untruncated_output_has_no_marker():
    sink = LogSink(limit=100)
    sink.write("hello\n")
    assert sink.finish() == ("hello\n", False)


def test_secrets_are_masked():
    sink = LogSink(secrets=["hunter22"])
    sink.write("token=hunter22\n")
    sink.add_secrets(["abc"])  # too short to mask safely: ignored
    assert sink.text() == "token=***\n"
