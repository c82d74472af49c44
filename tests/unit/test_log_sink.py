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


SECRET = "s3cr3t-value-42"


def _stored(sink: LogSink, pieces: list[str]) -> tuple[str, str]:
    """What was shown live (take after each write) and everything stored."""
    live = []
    for piece in pieces:
        sink.write(piece)
        live.append(sink.take())
    rest, _ = sink.finish()
    return "".join(live), "".join(live) + rest


def test_a_secret_split_across_writes_is_masked_at_every_boundary():
    text = f"deploying with {SECRET} now\n"
    for cut in range(1, len(text)):
        sink = LogSink(secrets=[SECRET])
        live, stored = _stored(sink, [text[:cut], text[cut:]])
        assert stored == "deploying with *** now\n", cut
        assert SECRET[:4] not in live, cut  # no beginning of it shows while it runs


def test_a_secret_written_a_character_at_a_time_is_masked():
    sink = LogSink(secrets=[SECRET])
    live, stored = _stored(sink, list(f"key={SECRET}\n") + ["done\n"])
    assert stored == "key=***\ndone\n"
    assert "s3cr" not in live


def test_the_tail_held_back_is_only_what_could_become_a_secret():
    sink = LogSink(secrets=[SECRET])
    sink.write("progress 10%\nkey=s3c")
    assert sink.take() == "progress 10%\nkey="  # the rest may be a secret's start
    sink.write("ond try\n")
    assert sink.take() == "s3cond try\n"  # it was not: shown as it was


def test_overlapping_secrets_are_masked_as_one_run_across_writes():
    sink = LogSink(secrets=["ABCDEF", "DEFGHIJ"])
    _, stored = _stored(sink, ["x ABC", "DEFG", "HIJ y\n"])
    assert stored == "x *** y\n"
    sink = LogSink(secrets=["token", "token-and-more"])
    _, stored = _stored(sink, ["a token-and", "-more b\n"])
    assert stored == "a *** b\n"  # the longer one, not `***-and-more`


def test_a_secret_at_the_size_cap_is_masked_in_the_kept_tail():
    sink = LogSink(limit=1024, secrets=[SECRET])
    _, stored = _stored(sink, ["x" * 1022 + SECRET[:6], SECRET[6:] + "\nthe end\n"] * 2)
    assert SECRET[:6] not in stored and SECRET[6:] not in stored
    assert "[interlock: output truncated:" in stored and stored.endswith("***\nthe end\n")


def test_a_multibyte_secret_split_in_a_character_is_masked():
    import codecs

    secret = "pässwörd-ü"
    raw = f"key={secret}\n".encode()
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    sink = LogSink(secrets=[secret])
    pieces = [decoder.decode(raw[i : i + 1]) for i in range(len(raw))]
    _, stored = _stored(sink, pieces)
    assert stored == "key=***\n"


def test_errors_and_details_are_masked_with_the_same_values():
    sink = LogSink(secrets=[SECRET + "\n"])  # read from a file: the line break is not part
    assert sink.mask(f"failed: {SECRET}") == "failed: ***"


def test_a_secret_is_masked_as_a_url_and_a_json_string_quote_it():
    secret = 'pa ss/"word"+1'
    sink = LogSink(secrets=[secret])
    assert sink.mask("GET /x?k=pa%20ss%2F%22word%22%2B1") == "GET /x?k=***"
    assert sink.mask('{"k": "pa ss/\\"word\\"+1"}') == '{"k": "***"}'


def test_any_cutting_of_any_output_stores_what_masking_the_whole_output_gives():
    import random

    from interlock.domain.masking import mask, variants

    rng = random.Random(13)
    alphabet = "abcd-\nü"
    for _ in range(3000):
        secrets = ["".join(rng.choices(alphabet, k=rng.randint(4, 9))) for _ in range(3)]
        # Output made of pieces of the secrets and noise, so they overlap and touch.
        pieces = [rng.choice([*secrets, *(s[: rng.randint(1, 5)] for s in secrets), "xy"])]
        pieces += [rng.choice([*secrets, "ab", "-", "\n", "cdü"]) for _ in range(8)]
        output = "".join(pieces)
        cuts = sorted(rng.sample(range(1, len(output)), min(len(output) - 1, rng.randint(1, 6))))
        chunks = [output[a:b] for a, b in zip([0, *cuts], [*cuts, len(output)], strict=True)]
        sink = LogSink(secrets=secrets)
        live, stored = _stored(sink, chunks)
        assert stored == mask(output, variants(secrets)), (secrets, chunks)
        assert stored.startswith(live) and not any(s in stored for s in secrets)
