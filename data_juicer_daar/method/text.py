"""Sample -> text: the ONE template used by synthesis, training and every op.

A sample is rendered from Alpaca fields (instruction/input/output), chat ``messages`` (a list of
``{"role", "content"}`` turns), ShareGPT ``conversations`` (a list of ``{"from", "value"}`` turns,
``human``/``gpt``/``system``...) or a plain text field. Both chat forms render the same way, so a
conversation reads the same whichever schema holds it. With ``fmt="auto"`` the form is recognised
per sample: the first of Alpaca (``instruction`` or ``output`` present), messages, conversations and
the text field that has content, so an empty form never hides another one. Bad fields never raise:
each case has a defined rendering and an issue name that callers count and report.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..options import Name, OneOf, Settings, option

#: version of the template; recorded in bundles so training and scoring provably agree.
TEMPLATE_VERSION = "daar-text-v1"
FORMATS = ("auto", "alpaca", "messages", "sharegpt", "text")

# Issue names (the value of the ``daar_issue`` meta key); "" means the sample was fine.
NO_TEXT = "no_text"  # nothing usable: scored with the defined no-text result
COERCED = "coerced"  # a field held a non-string value that was converted to text
BAD_MESSAGES = "bad_messages"  # a chat field was not a list of turn dicts; usable parts kept
#: ShareGPT speaker names -> the role names of the messages form
SHAREGPT_ROLES = {"human": "user", "gpt": "assistant"}


@dataclass(frozen=True)
class TextFields(Settings):
    """Field names and form of the input samples.

    :param fmt: "auto" (recognise per sample), "alpaca", "messages", "sharegpt" or "text".
    :param instruction_key: Alpaca instruction field.
    :param input_key: Alpaca input (context) field.
    :param output_key: Alpaca output (response) field.
    :param messages_key: chat field holding a list of ``{"role", "content"}`` turns.
    :param conversations_key: ShareGPT field holding a list of ``{"from", "value"}`` turns.
    :param text_key: plain-text field.
    """

    fmt: str = option(
        "auto", flag="--format", check=OneOf(FORMATS), help="sample form; auto recognises Alpaca, messages, ShareGPT or text per row"
    )
    instruction_key: str = option("instruction", check=Name("a field name (a non-empty string)"), help="Alpaca instruction field")
    input_key: str = option("input", check=Name("a field name (a non-empty string)"), help="Alpaca input field")
    output_key: str = option("output", check=Name("a field name (a non-empty string)"), help="Alpaca output field")
    messages_key: str = option("messages", check=Name("a field name (a non-empty string)"), help="chat field: a list of role/content turns")
    conversations_key: str = option(
        "conversations",
        check=Name("a field name (a non-empty string)"),
        help="ShareGPT field: a list of from/value turns (human, gpt, system, ...)",
    )
    text_key: str = option("text", check=Name("a field name (a non-empty string)"), help="plain-text field")


@dataclass(frozen=True)
class Rendered:
    """A rendered sample: its text ("" when nothing was usable) and the issue seen ("" if none)."""

    text: str
    issue: str = ""


def _as_text(value: Any) -> tuple[str, bool]:
    """Return (text, coerced): strings pass through cleaned, other values are serialised."""
    if value is None:
        return "", False
    if isinstance(value, str):
        text, coerced = value, False
    elif isinstance(value, (dict, list, tuple)):
        text, coerced = json.dumps(value, ensure_ascii=False, default=str), True
    else:
        text, coerced = str(value), True
    # lone surrogates and other unencodable code points would break the tokenizer
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text.strip(), coerced


def _present(sample: Mapping[str, Any], key: str) -> bool:
    return sample.get(key) is not None


def _render_alpaca(sample: Mapping[str, Any], f: TextFields) -> Rendered:
    parts, coerced = [], False
    for header, key in (("Instruction", f.instruction_key), ("Input", f.input_key), ("Response", f.output_key)):
        text, was_coerced = _as_text(sample.get(key))
        coerced |= was_coerced
        if text:
            parts.append(f"### {header}:\n{text}")
    return _finish("\n\n".join(parts), COERCED if coerced else "")


def _turn(message: Mapping[str, Any]) -> tuple[str, str, bool]:
    """(role, text, coerced) of one chat turn, in the messages (role/content) or ShareGPT
    (from/value) schema; ShareGPT speakers take the messages form's role names."""
    chat = message.get("content") is not None or message.get("role") is not None
    schema = ("role", "content") if chat else ("from", "value")
    text, coerced = _as_text(message.get(schema[1]))
    role, _ = _as_text(message.get(schema[0]))
    return SHAREGPT_ROLES.get(role, role) or "user", text, coerced


def _render_turns(turns: Any) -> Rendered:
    if not isinstance(turns, (list, tuple)):
        text, _ = _as_text(turns)
        return _finish(text, BAD_MESSAGES)
    lines, issue = [], ""
    for message in turns:
        if not isinstance(message, Mapping):
            issue = BAD_MESSAGES
            (text, _), role = _as_text(message), "user"
        else:
            role, text, coerced = _turn(message)
            issue = issue or (COERCED if coerced else "")
        if text:
            lines.append(f"### {role.capitalize()}:\n{text}")
    return _finish("\n\n".join(lines), issue)


def _render_messages(sample: Mapping[str, Any], f: TextFields) -> Rendered:
    return _render_turns(sample.get(f.messages_key))


def _render_sharegpt(sample: Mapping[str, Any], f: TextFields) -> Rendered:
    return _render_turns(sample.get(f.conversations_key))


def _render_text(sample: Mapping[str, Any], f: TextFields) -> Rendered:
    text, coerced = _as_text(sample.get(f.text_key))
    return _finish(text, COERCED if coerced else "")


def _finish(text: str, issue: str) -> Rendered:
    return Rendered(text, issue) if text else Rendered("", NO_TEXT)


_RENDERERS = {"alpaca": _render_alpaca, "messages": _render_messages, "sharegpt": _render_sharegpt, "text": _render_text}


def _present_forms(sample: Mapping[str, Any], fields: TextFields) -> list[str]:
    """Forms whose fields the sample holds, in preference order (plain text always last)."""
    forms = []
    if _present(sample, fields.instruction_key) or _present(sample, fields.output_key):
        forms.append("alpaca")
    if _present(sample, fields.messages_key):
        forms.append("messages")
    if _present(sample, fields.conversations_key):
        forms.append("sharegpt")
    return [*forms, "text"]


def detect_format(sample: Mapping[str, Any], fields: TextFields) -> str:
    """The form of one sample under ``fields`` (resolves "auto"): the first present form, in the
    order Alpaca, messages, ShareGPT, text, that renders to some text; else the first present form."""
    if fields.fmt != "auto":
        return fields.fmt
    forms = _present_forms(sample, fields)
    return next((f for f in forms if _RENDERERS[f](sample, fields).text), forms[0])


def render(sample: Any, fields: TextFields = TextFields()) -> Rendered:
    """Render one sample (a mapping) into the embedded text; never raises."""
    if not isinstance(sample, Mapping):
        text, _ = _as_text(sample)
        return _finish(text, COERCED)
    return _RENDERERS[detect_format(sample, fields)](sample, fields)
