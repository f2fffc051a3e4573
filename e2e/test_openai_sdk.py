"""The official openai SDK and langchain-openai against the gateway's /v1 (only base_url set).

Each backend runs with the packaged local LLM (LLM_PROVIDER=local) behind a gateway that
requires an API key, so the SDK's own Authorization header is what gets checked.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from langchain_openai import ChatOpenAI, OpenAIEmbeddings

from devinfra.processes import RunningService, running_service
from e2e.conftest import BACKEND_MODULES, backend_env

API_KEY = "e2e-openai-key"
CHAT_MODEL = "SmolLM2-135M-Instruct"
EMBEDDING_MODEL = "all-MiniLM-L6-v2"
TRANSCRIPTION_MODEL = "whisper-base"
SENTENCE = "hello world"


@pytest.fixture(scope="module", params=sorted(BACKEND_MODULES))
def gateway(
    request: pytest.FixtureRequest,
    migrated_pg_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningService]:
    """One backend with the local LLM, and a gateway (with an API key) routed to it."""
    name: str = request.param
    env = {**backend_env(migrated_pg_url, redis_url), "LLM_PROVIDER": "local"}
    log_dir = tmp_path_factory.mktemp(f"openai-{name}")
    with running_service(BACKEND_MODULES[name], env, log_dir) as backend:
        gateway_env = {
            **env,
            "ML_SERVICE_BACKEND": name,
            f"ML_BACKEND_{name.upper()}_URL": backend.base_url,
            "GATEWAY_API_KEYS": API_KEY,
        }
        with running_service("gateway", gateway_env, log_dir) as running:
            yield running


@pytest.fixture(scope="module")
def client(gateway: RunningService) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=API_KEY, base_url=gateway.base_url + "/v1", max_retries=0) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path: Path = tmp_path_factory.mktemp("audio") / "hello.wav"
    subprocess.run(["espeak-ng", "-w", str(path), SENTENCE], check=True, timeout=30)
    return path


def test_models_lists_chat_embedding_and_transcription_models(client: openai.OpenAI) -> None:
    models = {model.id: model for model in client.models.list()}
    assert {CHAT_MODEL, EMBEDDING_MODEL, TRANSCRIPTION_MODEL} <= set(models)
    assert models[CHAT_MODEL].owned_by == "local"
    assert client.models.retrieve(EMBEDDING_MODEL).id == EMBEDDING_MODEL


def test_embeddings_float_and_base64_match_the_contracts_endpoint(
    client: openai.OpenAI, gateway: RunningService
) -> None:
    text = "Vector databases index embeddings for fast search."
    as_float = client.embeddings.create(model=EMBEDDING_MODEL, input=text, encoding_format="float")
    # the SDK asks for base64 by default and decodes it into floats itself
    as_base64 = client.embeddings.create(model=EMBEDDING_MODEL, input=[text, "second text"])
    raw = client.embeddings.with_raw_response.create(
        model=EMBEDDING_MODEL, input=text, encoding_format="base64"
    ).http_response.json()["data"][0]["embedding"]
    direct = httpx.post(
        gateway.base_url + "/api/v1/embeddings/generate",
        json={"text": text},
        headers={"X-API-Key": API_KEY},
        timeout=30,
    ).json()["embedding"]

    assert as_float.model == EMBEDDING_MODEL and len(as_float.data) == 1
    assert len(as_base64.data) == 2 and [d.index for d in as_base64.data] == [0, 1]
    assert isinstance(raw, str)
    decoded = np.frombuffer(base64.b64decode(raw), dtype="<f4")
    reference = np.asarray(direct)
    for vector in (as_float.data[0].embedding, as_base64.data[0].embedding, decoded):
        v = np.asarray(vector)
        assert v.shape == (384,)
        cosine = float(v @ reference / (np.linalg.norm(v) * np.linalg.norm(reference)))
        assert cosine >= 0.9999
    assert as_float.usage.prompt_tokens > 0


def test_embeddings_with_other_dimensions_are_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=EMBEDDING_MODEL, input="text", dimensions=128)
    assert "dimensions" in caught.value.message
    same = client.embeddings.create(model=EMBEDDING_MODEL, input="text", dimensions=384)
    assert len(same.data[0].embedding) == 384


def test_transcription_of_synthesised_speech(client: openai.OpenAI, speech_wav: Path) -> None:
    with speech_wav.open("rb") as audio:
        transcript = client.audio.transcriptions.create(model=TRANSCRIPTION_MODEL, file=audio)
    assert "hello" in transcript.text.lower()


@pytest.mark.parametrize("response_format", ["text", "srt", "vtt", "verbose_json"])
def test_transcription_formats(
    client: openai.OpenAI, speech_wav: Path, response_format: str
) -> None:
    with speech_wav.open("rb") as audio:
        result = client.audio.transcriptions.create(  # type: ignore[call-overload]
            model=TRANSCRIPTION_MODEL, file=audio, response_format=response_format, language="en"
        )
    if response_format == "verbose_json":
        assert result.language == "en" and result.duration > 0  # type: ignore[union-attr]
        assert result.segments and "hello" in result.segments[0].text.lower()  # type: ignore[union-attr]
        return
    assert isinstance(result, str) and "hello" in result.lower()
    if response_format == "srt":
        assert "-->" in result and result.lstrip().startswith("1")
    if response_format == "vtt":
        assert result.startswith("WEBVTT")


def test_chat_completion_with_the_local_model(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[
            {"role": "system", "content": "Answer in one short sentence."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        max_tokens=16,
        temperature=0,
    )
    [choice] = completion.choices
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert completion.model == CHAT_MODEL
    assert completion.usage is not None and 0 < completion.usage.completion_tokens <= 16


def test_streamed_chat_completion_ends_and_adds_up(client: openai.OpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "What is the capital of France?"}]
    whole = client.chat.completions.create(
        model=CHAT_MODEL, messages=messages, max_tokens=16, temperature=0
    )
    chunks = list(
        client.chat.completions.create(
            model=CHAT_MODEL,
            messages=messages,
            max_tokens=16,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    contents = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    # token by token, as the backend generates them (not one chunk of the whole answer)
    assert len(contents) > 1
    assert "".join(contents) == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_an_unknown_model_raises_the_sdks_not_found_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}], max_tokens=4
        )
    assert caught.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="no-such-embedder", input="hi")


def test_a_wrong_key_raises_the_sdks_authentication_error(gateway: RunningService) -> None:
    with (
        openai.OpenAI(api_key="wrong", base_url=gateway.base_url + "/v1", max_retries=0) as sdk,
        pytest.raises(openai.AuthenticationError),
    ):
        sdk.models.list()


def test_langchain_openai_chat_and_embeddings(gateway: RunningService) -> None:
    base_url = gateway.base_url + "/v1"
    chat = ChatOpenAI(
        model=CHAT_MODEL, base_url=base_url, api_key=API_KEY, max_tokens=16, temperature=0
    )
    # check_embedding_ctx_length=False: otherwise it tokenises with tiktoken, which downloads
    # its vocabulary and sends token ids (refused here: the contract takes text)
    # base_url and api_key are aliases of openai_api_base and openai_api_key
    embeddings = OpenAIEmbeddings(  # type: ignore[call-arg]
        model=EMBEDDING_MODEL, base_url=base_url, api_key=API_KEY, check_embedding_ctx_length=False
    )
    answer = chat.invoke("Name a colour.")
    streamed = "".join(str(piece.content) for piece in chat.stream("Name a colour."))
    assert streamed == answer.content
    vector = embeddings.embed_query("a colour")
    assert isinstance(answer.content, str) and answer.content
    assert len(vector) == 384
