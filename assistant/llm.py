"""Chat-model backends by name, all LangChain chat models.

- ``local``: llama.cpp in-process (``llama-cpp-python``) over a packaged GGUF
  model (see ``assistant.models``); loaded lazily, once.
- ``openai``: any OpenAI-compatible server (llama.cpp's server, vLLM, Ollama, …)
  through ``langchain-openai``: base URL, model and key from settings.
- ``fake``: deterministic queued replies, for tests.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr, SecretStr

from assistant.config import Settings, choose
from assistant.errors import ModelError
from assistant.models import model_path
from assistant.tokens import next_probabilities, shared_prefix

if TYPE_CHECKING:
    from llama_cpp.llama_types import ChatCompletionRequestMessage


def _to_llama(messages: list[BaseMessage]) -> list[ChatCompletionRequestMessage]:
    """The messages as llama.cpp's: an AI message is the assistant's, a system message the
    system's, any other the user's."""
    out: list[ChatCompletionRequestMessage] = []
    for m in messages:
        content = str(m.content)
        if m.type == "ai":
            out.append({"role": "assistant", "content": content})
        elif m.type == "system":
            out.append({"role": "system", "content": content})
        else:
            out.append({"role": "user", "content": content})
    return out


class LlamaCppChat(BaseChatModel):
    """A thin LangChain chat model over ``llama_cpp.Llama`` (one generation at a time)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    model_path: str
    model_name: str
    n_ctx: int = 4096
    n_threads: int = 2
    temperature: float = 0.0
    max_tokens: int = 256
    seed: int = 0
    _llama: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)  # one generation at a time
    _load_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _grammars: dict[str, Any] = PrivateAttr(default_factory=dict)

    @property
    def _llm_type(self) -> str:
        return "llama-cpp"

    @property
    def llama(self) -> Any:
        with self._load_lock:
            return self._load()

    def _load(self) -> Any:
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise ModelError(f"llama-cpp-python is not installed ({exc})") from None
            try:
                self._llama = Llama(
                    model_path=self.model_path,
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    seed=self.seed,
                    verbose=False,
                )
            except Exception as exc:  # noqa: BLE001 - any load failure is a model error
                raise ModelError(f"Could not load {self.model_path}: {exc}") from exc
        return self._llama

    def save_prefix(self, path: Path) -> None:
        """Save llama.cpp's state (the processed prompt so far) for the next process.

        Only the KV cache and token ids are kept: the logits of the prefix are never
        reused (generation evaluates at least the new tokens), so a single zero row
        stands in for them and the file stays ~50 MB instead of hundreds."""
        import numpy as np

        with self._lock:
            state = self.llama.save_state()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
        with tmp.open("wb") as handle:
            np.savez(
                handle,
                input_ids=state.input_ids,
                n_tokens=state.n_tokens,
                seed=state.seed,
                llama_state=np.frombuffer(state.llama_state, dtype=np.uint8),
                n_vocab=self.llama.n_vocab(),
            )
        os.replace(tmp, path)

    def load_prefix(self, path: Path) -> bool:
        """Restore a state saved by :meth:`save_prefix`; False if it does not fit this model."""
        import numpy as np
        from llama_cpp import LlamaState

        try:
            with np.load(path) as data:
                if int(data["n_vocab"]) != self.llama.n_vocab():
                    return False
                raw = data["llama_state"].tobytes()
                state = LlamaState(
                    input_ids=data["input_ids"],
                    scores=np.zeros((1, self.llama.n_vocab()), dtype=np.single),
                    n_tokens=int(data["n_tokens"]),
                    llama_state=raw,
                    llama_state_size=len(raw),
                    seed=int(data["seed"]),
                )
            with self._lock:
                self.llama.load_state(state)
            return True
        except Exception:  # noqa: BLE001 - a bad cache file is rebuilt, never fatal
            return False

    def _params(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        params = {
            "temperature": kwargs.get("temperature", self.temperature),
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "seed": self.seed,
            "stop": stop or [],
        }
        fmt = kwargs.get("response_format") or {}
        schema = (fmt.get("json_schema") or {}).get("schema") or fmt.get("schema")
        if schema:  # a structured-output request, enforced here by a llama.cpp grammar
            params["grammar"] = self._grammar(json.dumps(schema))
        return params

    def _grammar(self, schema: str) -> Any:
        if schema not in self._grammars:
            from llama_cpp import LlamaGrammar

            if len(self._grammars) > 256:
                self._grammars.clear()
            self._grammars[schema] = LlamaGrammar.from_json_schema(schema, verbose=False)
        return self._grammars[schema]

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._lock:
            out = self.llama.create_chat_completion(
                _to_llama(messages), **self._params(stop, kwargs)
            )
        text = out["choices"][0]["message"]["content"] or ""
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def label_scores(self, messages: list[BaseMessage], labels: list[str]) -> dict[str, float]:
        """The probability of each label as the first token of the reply (see
        :meth:`next_token_scores`), the same for the same messages whatever came before."""
        return self.next_token_scores(
            messages, "", {label: [label, label.capitalize(), f" {label}"] for label in labels},
            reuse_last=False,
        )

    def next_token_scores(
        self, messages: list[BaseMessage], prefill: str, options: dict[str, list[str]],
        reuse_last: bool = True,
    ) -> dict[str, float]:
        """The probability that the reply, after ``prefill`` (text the reply is taken to
        start with), goes on with each option: the summed probability of its spellings'
        first tokens, read off the model's next-token distribution (no sampling, one
        forward pass over the new tokens). The prompt's prefix already in llama.cpp's
        cache is reused; with ``reuse_last`` False only up to the last message's text, as
        reusing part of it changes the batching and so the scores by a few points."""
        with self._lock:
            llama = self.llama
            prompt = self._chat_prompt(messages) + prefill
            tokens = llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
            cached = llama.input_ids[: llama.n_tokens].tolist()
            limit = len(tokens) - 1  # evaluate one token at least
            if not reuse_last:
                blank = self._chat_prompt([*messages[:-1], type(messages[-1])("")])
                limit = min(limit, shared_prefix(tokens, llama.tokenize(
                    blank.encode("utf-8"), add_bos=False, special=True)))
            keep = min(shared_prefix(cached, tokens), limit)
            llama.n_tokens = keep
            llama.eval(tokens[keep:])
            probs = next_probabilities(llama)
        mass = {}
        for name, spellings in options.items():
            firsts = {
                llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)[0]
                for text in spellings
            }
            mass[name] = float(sum(probs[t] for t in firsts))
        return mass

    def _chat_prompt(self, messages: list[BaseMessage]) -> str:
        """The messages in the model's own chat template, ready for the reply."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llama = self.llama
        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelError(f"{self.model_name} has no chat template")
        eos, bos = llama.token_eos(), llama.token_bos()
        formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=llama._model.token_get_text(eos) if eos != -1 else "",
            bos_token=llama._model.token_get_text(bos) if bos != -1 else "",
        )
        return formatter(messages=_to_llama(messages)).prompt

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        with self._lock:
            stream = self.llama.create_chat_completion(
                _to_llama(messages), stream=True, **self._params(stop, kwargs)
            )
            for part in stream:
                token = part["choices"][0]["delta"].get("content") or ""
                if token:
                    if run_manager:
                        run_manager.on_llm_new_token(token)
                    yield ChatGenerationChunk(message=AIMessageChunk(content=token))


def fake_chat(replies: list[str]) -> BaseChatModel:
    """Replies are returned in order, one per call; streaming yields them word by word."""
    return GenericFakeChatModel(messages=iter([AIMessage(content=r) for r in replies]))


class QuoteChat(BaseChatModel):
    """A deterministic stand-in that follows the prompts the way a careful model would:
    an answer call gets the first candidate passage chosen (the retriever's best), as
    JSON; a judge prompt gets "yes" when the claim's words all appear in the passage;
    triage gets "none" (routing is left to the reviewed patterns); a translation gets the
    sentence back unchanged (so it fails the translation check). No model, no
    randomness: for tests of everything around the model."""

    delay_s: float = 0.0  # an answer call takes this long (tests of deadlines)

    @property
    def _llm_type(self) -> str:
        return "quote"

    def reply(self, messages: list[BaseMessage]) -> str:
        last = str(messages[-1].content) if messages else ""
        if "<latest>" in last:  # triage: leaves routing to the reviewed patterns
            return "none"
        if "<sentence language=" in last:  # a translation: it knows no other language, so
            sentence = re.search(r"<sentence[^>]*>(.*?)</sentence>", last, re.S)  # it echoes
            return sentence.group(1).strip() if sentence else ""
        if "<claim>" in last:  # judge
            claim = re.search(r"<claim>(.*?)</claim>", last, re.S)
            passage = re.search(r"<passage>(.*?)</passage>", last, re.S)
            words = set(re.findall(r"[a-z]{4,}", (claim.group(1) if claim else "").lower()))
            text = (passage.group(1) if passage else "").lower()
            missing = sorted(w for w in words if w not in text)
            return "yes: every word is in the passage" if not missing else (
                "no: the passage does not say " + ", ".join(missing[:3])
            )
        # the answer call: the first candidate (the retriever's best), or none offered
        time.sleep(self.delay_s)
        return '{"ids":[1]}' if re.search(r"^Candidates: 1 = ", last, re.M) else '{"ids":[]}'


    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self.reply(messages)))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for word in re.findall(r"\S+\s*", self.reply(messages)):
            yield ChatGenerationChunk(message=AIMessageChunk(content=word))


def _local(settings: Settings) -> BaseChatModel:
    path = model_path(settings.llm_model, settings.data_dir)
    return LlamaCppChat(
        model_path=str(path),
        model_name=settings.llm_model,
        n_ctx=settings.llm_context,
        n_threads=settings.llm_threads,
        temperature=settings.llm_temperature,
        max_tokens=settings.llm_max_tokens,
        seed=settings.llm_seed,
    )


def _openai(settings: Settings) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        base_url=settings.openai_base_url,
        api_key=SecretStr(settings.openai_api_key.get_secret_value()
                          or os.environ.get("OPENAI_API_KEY", "none")),
        model=settings.openai_model,
        temperature=settings.llm_temperature,
        max_completion_tokens=settings.llm_max_tokens,
        seed=settings.llm_seed,
        timeout=settings.llm_timeout_s,
    )


def _fake(settings: Settings) -> BaseChatModel:
    return fake_chat(list(settings.fake_replies))


BACKENDS: dict[str, Callable[[Settings], BaseChatModel]] = {
    "local": _local,
    "openai": _openai,
    "fake": _fake,
    "quote": lambda settings: QuoteChat(delay_s=settings.fake_delay_s),
}


def build_triage_model(settings: Settings) -> BaseChatModel:
    """The model of triage's semantic check. Locally, an instance of its own (the same
    file is mapped once in memory; each instance has its own small context), so a risky
    message is checked while an answer is being written; a server is shared; the test
    backends get the deterministic stand-in (fake replies stay for the answers)."""
    if settings.llm_backend == "local":
        name = settings.triage_model or settings.llm_model
        return LlamaCppChat(
            model_path=str(model_path(name, settings.data_dir)),
            model_name=name,
            n_ctx=settings.triage_context,
            n_threads=settings.llm_threads,
            temperature=0.0,
            max_tokens=2,
            seed=settings.llm_seed,
        )
    if settings.llm_backend == "openai":
        url = settings.triage_openai_base_url or settings.openai_base_url
        return _openai(settings.model_copy(update={"openai_base_url": url}))
    return QuoteChat()


def build_translation_model(settings: Settings) -> BaseChatModel:
    """The model that translates an answer's guide sentences and translates them back for
    the check. Locally, an instance of its own with a small context and nothing of the
    guide in it: after the guide prefix, the model "translated back" by copying the guide's
    sentence from its context, and every translation passed. A server is shared (each call
    is sent alone); the test backends get the deterministic stand-in."""
    if settings.llm_backend == "local":
        return LlamaCppChat(
            model_path=str(model_path(settings.llm_model, settings.data_dir)),
            model_name=settings.llm_model,
            n_ctx=1024,
            n_threads=settings.llm_threads,
            temperature=0.0,
            max_tokens=160,
            seed=settings.llm_seed,
        )
    if settings.llm_backend == "openai":
        return _openai(settings)
    return QuoteChat()


def build_chat_model(settings: Settings) -> BaseChatModel:
    """The chat model named by ``settings.llm_backend``."""
    return choose(BACKENDS, settings.llm_backend, "chat-model backend")(settings)
