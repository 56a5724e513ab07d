import pytest

from data_juicer_daar.method.text import BAD_MESSAGES, COERCED, NO_TEXT, Rendered, TextFields, detect_format, render

AUTO = TextFields()


def test_alpaca_all_fields():
    sample = {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"}
    assert render(sample) == Rendered("### Instruction:\nAdd the numbers.\n\n### Input:\n2 and 3\n\n### Response:\n5")


def test_alpaca_empty_input_is_omitted():
    assert render({"instruction": "Say hi.", "input": "", "output": "hi"}).text == "### Instruction:\nSay hi.\n\n### Response:\nhi"


def test_messages():
    sample = {"messages": [{"role": "user", "content": "你好 🌍"}, {"role": "assistant", "content": "Ｈｅｌｌｏ！"}]}
    assert render(sample) == Rendered("### User:\n你好 🌍\n\n### Assistant:\nＨｅｌｌｏ！")


def test_sharegpt_renders_like_messages():
    turns = [("system", "Be brief."), ("human", "What is 2+2?"), ("gpt", "4"), ("observation", "ok")]
    sharegpt = {"conversations": [{"from": who, "value": text} for who, text in turns]}
    roles = {"human": "user", "gpt": "assistant"}
    messages = {"messages": [{"role": roles.get(who, who), "content": text} for who, text in turns]}
    expected = "### System:\nBe brief.\n\n### User:\nWhat is 2+2?\n\n### Assistant:\n4\n\n### Observation:\nok"
    assert render(sharegpt) == render(messages) == Rendered(expected)
    assert detect_format(sharegpt, AUTO) == "sharegpt"
    assert render({"chats": sharegpt["conversations"]}, TextFields(fmt="sharegpt", conversations_key="chats")) == Rendered(expected)


def test_sharegpt_turns_in_the_messages_field_and_bad_turns():
    assert render({"messages": [{"from": "human", "value": "hi"}]}) == Rendered("### User:\nhi")
    assert render({"conversations": "just a string"}) == Rendered("just a string", BAD_MESSAGES)
    assert render({"conversations": [{"from": "gpt", "value": None}, 7]}) == Rendered("### User:\n7", BAD_MESSAGES)
    assert render({"conversations": [{"from": "human", "value": 42}]}) == Rendered("### User:\n42", COERCED)
    assert render({"conversations": []}) == Rendered("", NO_TEXT)


def test_plain_text_uses_text_key():
    assert render({"content": "plain words"}, TextFields(text_key="content")) == Rendered("plain words")


@pytest.mark.parametrize(
    "sample, expected",
    [
        ({"instruction": "x", "text": "t"}, "alpaca"),
        ({"output": "y", "messages": [{"role": "user", "content": "m"}]}, "alpaca"),
        ({"instruction": None, "output": None, "messages": [{"role": "user", "content": "m"}], "text": "t"}, "messages"),
        ({"instruction": None, "messages": None, "text": "t"}, "text"),
        ({"instruction": "", "messages": [{"role": "user", "content": "m"}]}, "messages"),
        ({"instruction": "  ", "input": "", "output": None, "text": "t"}, "text"),
        ({"instruction": "", "messages": [], "text": ""}, "alpaca"),
        ({"instruction": None, "conversations": [{"from": "human", "value": "c"}], "text": "t"}, "sharegpt"),
        ({"messages": [], "conversations": [{"from": "human", "value": "c"}]}, "sharegpt"),
        ({"messages": [{"role": "user", "content": "m"}], "conversations": [{"from": "human", "value": "c"}]}, "messages"),
        ({}, "text"),
    ],
)
def test_auto_detection_order(sample, expected):
    assert detect_format(sample, AUTO) == expected


def test_empty_instruction_does_not_hide_messages():
    rows = [{"instruction": "", "messages": [{"role": "user", "content": f"question {i}"}]} for i in range(3)]
    assert [render(r, AUTO) for r in rows] == [Rendered(f"### User:\nquestion {i}") for i in range(3)]
    assert render({"instruction": "", "messages": [], "text": None}, AUTO) == Rendered("", NO_TEXT)


def test_forced_format_overrides_detection():
    sample = {"instruction": "ignored", "text": "used"}
    assert render(sample, TextFields(fmt="text")).text == "used"


@pytest.mark.parametrize(
    "sample",
    [
        {},
        {"instruction": None, "output": None},
        {"instruction": "", "input": "  ", "output": "\n"},
        {"text": None},
        {"text": ""},
        {"messages": []},
        {"messages": [{"role": "user", "content": None}]},
    ],
)
def test_nothing_usable_is_no_text(sample):
    assert render(sample) == Rendered("", NO_TEXT)


@pytest.mark.parametrize(
    "sample, text",
    [
        ({"instruction": 42, "output": 3.5}, "### Instruction:\n42\n\n### Response:\n3.5"),
        ({"instruction": ["a", "b"], "output": {"k": "ü"}}, '### Instruction:\n["a", "b"]\n\n### Response:\n{"k": "ü"}'),
        ({"text": True}, "True"),
    ],
)
def test_non_string_fields_are_coerced(sample, text):
    assert render(sample) == Rendered(text, COERCED)


def test_bad_messages_keep_usable_parts():
    assert render({"messages": "just a string"}) == Rendered("just a string", BAD_MESSAGES)
    assert render({"messages": ["loose", {"role": "user", "content": "ok"}]}) == Rendered("### User:\nloose\n\n### User:\nok", BAD_MESSAGES)


def test_lone_surrogates_are_replaced_not_raised():
    rendered = render({"text": "bad \ud800 char"})
    assert rendered.text == "bad ? char"
    rendered.text.encode("utf-8")  # encodable now


def test_non_mapping_sample():
    assert render("a bare string") == Rendered("a bare string", COERCED)
    assert render(None) == Rendered("", NO_TEXT)


def test_unknown_format_rejected():
    with pytest.raises(ValueError, match="fmt must be one of"):
        TextFields(fmt="xml")
