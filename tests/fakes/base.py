"""`ModelFake`: what every fake model API shares on top of `FakeUpstream`.

A subclass supplies `read_ask` (request -> `Ask`), `render` (`Turn` -> `Reply` in its wire
format), `error_reply` (its error shape) and `generation_path` (the regex of its
generate route(s)). In return it gets the deterministic default answers and the
scripting shortcuts `script_turn`, `script_error`, `turn_reply`, `text_reply`,
`tool_call_reply` and `reasoning_reply`.
"""

from __future__ import annotations

import re
from dataclasses import fields as dataclass_fields
from dataclasses import replace

from tests.fakes.records import RecordedRequest
from tests.fakes.reply import Reply, Responder
from tests.fakes.server import FakeUpstream
from tests.fakes.turn import Ask, ToolCall, Turn, Usage, decide


class ModelFake(FakeUpstream):
    """Base for fakes of model APIs (Claude, OpenAI, Gemini, Codex, Cloud Code).

    Attributes (settable per test):
        text: the default answer text; None means "hello from <name>".
        reasoning_text: the thinking text used when a request asks for reasoning.
        usage: token counts of default answers.
        models: model ids listed by the models route.
    """

    default_models: tuple[str, ...] = ()
    #: regex (full match on the path) of the routes `script_turn`/`script_error` target
    generation_path: re.Pattern = re.compile(r".*")

    def __init__(self, keys=None, clock=None, reactor=None, models=None) -> None:
        self.text: str | None = None
        self.reasoning_text = "thinking about it"
        self.usage = Usage()
        self.models = list(models if models is not None else self.default_models)
        super().__init__(keys=keys, clock=clock, reactor=reactor)

    # -- subclass contract ------------------------------------------------------------

    def read_ask(self, rec: RecordedRequest, model: str | None = None) -> Ask:
        raise NotImplementedError

    def render(self, turn: Turn, rec: RecordedRequest, ask: Ask) -> Reply:
        raise NotImplementedError

    def error_reply(self, status: int, message: str | None = None, retry_after=None) -> Reply:
        raise NotImplementedError

    # -- defaults ---------------------------------------------------------------------

    def answer_text(self) -> str:
        return self.text if self.text is not None else f"hello from {self.name}"

    def decide(self, ask: Ask) -> Turn:
        """The default `Turn` for a request; override or set attributes to change it."""
        return decide(ask, self.answer_text(), self.reasoning_text, replace(self.usage))

    def answer(self, rec: RecordedRequest, model: str | None = None) -> Reply:
        """Read the request and answer it with the default turn."""
        ask = self.read_ask(rec, model)
        return self.render(self.decide(ask), rec, ask)

    # -- scripting shortcuts ----------------------------------------------------------

    def turn_reply(self, turn: Turn, **reply_fields) -> Responder:
        """A responder rendering `turn` as JSON or stream, whichever the request wants.

        `reply_fields` are `Reply` fields applied on top (`split_every=5`,
        `chunk_delay=0.01`, `reset_after=200`, `gzip=True`, `status=...`).
        """

        def respond(rec: RecordedRequest) -> Reply:
            ask = self.read_ask(rec, _model_from_path(rec.path))
            return replace(self.render(turn, rec, ask), **reply_fields)

        return respond

    def default_answer(self, **reply_fields) -> Responder:
        """The fake's usual answer (request validation included), reshaped by `Reply` fields.

        E.g. `fake.default("POST", fake.generation_path, fake.default_answer(split_every=3))`.
        """

        def respond(rec: RecordedRequest) -> Reply:
            reply = self._builtin_reply(rec)
            return replace(reply, **reply_fields) if reply.status < 400 else reply

        return respond

    def text_reply(self, text: str | list[str], **fields) -> Responder:
        """Fields are split between `Turn` (usage, stop, id...) and `Reply` (framing)."""
        turn_fields, reply_fields = _split_fields(fields)
        return self.turn_reply(Turn(text=text, **turn_fields), **reply_fields)

    def tool_call_reply(self, name: str, args: dict | None = None, **fields) -> Responder:
        """A reply calling one tool; `text=` adds text before the call."""
        turn_fields, reply_fields = _split_fields(fields)
        turn = Turn(tool_calls=[ToolCall(name, args or {})], **turn_fields)
        return self.turn_reply(turn, **reply_fields)

    def reasoning_reply(self, reasoning: str | list[str], text: str = "", **fields):
        turn_fields, reply_fields = _split_fields(fields)
        return self.turn_reply(Turn(reasoning=reasoning, text=text, **turn_fields), **reply_fields)

    def script_turn(self, *turns: Turn, key: str | None = None, **reply_fields) -> None:
        """Queue turns on the generate route(s), in order."""
        responders = [self.turn_reply(t, **reply_fields) for t in turns]
        self.script("POST", self.generation_path, *responders, key=key)

    def script_error(
        self,
        status: int,
        message: str | None = None,
        retry_after=None,
        key: str | None = None,
        times: int = 1,
    ) -> None:
        """Queue `times` provider-shaped errors on the generate route(s)."""
        reply = self.error_reply(status, message, retry_after=retry_after)
        self.script("POST", self.generation_path, *([reply] * times), key=key)


def _split_fields(fields: dict) -> tuple[dict, dict]:
    turn_names = {f.name for f in dataclass_fields(Turn)}
    turn = {k: v for k, v in fields.items() if k in turn_names}
    return turn, {k: v for k, v in fields.items() if k not in turn_names}


_MODEL_IN_PATH = re.compile(r"models/([^/:]+):")


def _model_from_path(path: str) -> str | None:
    m = _MODEL_IN_PATH.search(path)
    return m.group(1) if m else None
