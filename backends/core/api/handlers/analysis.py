"""Analysis: analyze, generate, classify, summarize, sentiment, keywords."""

from __future__ import annotations

from collections.abc import Generator

from pydantic import BaseModel

from backends.core.analysis import results as core
from backends.core.api.api_request import ApiRequest, Handler, StreamResult
from backends.core.api.handlers.convert import usage
from backends.core.engine import Engine
from backends.core.llm.base import Completion, GenerationStream
from shared_schemas import analysis as an
from shared_schemas import analysis_results as ar
from shared_schemas import generation as gen
from shared_schemas.common import Usage


def _sentiment(result: core.SentimentResult) -> ar.SentimentResult:
    return ar.SentimentResult(
        sentiment=result.sentiment,
        score=result.score,
        confidence=result.confidence,
        scores=ar.SentimentScores(
            positive=result.scores["positive"],
            negative=result.scores["negative"],
            neutral=result.scores["neutral"],
        ),
    )


def _summary(result: core.SummaryResult) -> ar.SummaryResult:
    return ar.SummaryResult(
        summary=result.summary, key_points=result.key_points, word_count=result.word_count
    )


def _keywords(result: core.KeywordsResult) -> ar.KeywordsResult:
    return ar.KeywordsResult(
        keywords=[ar.Keyword(keyword=k.keyword, score=k.score) for k in result.keywords]
    )


def analyze(engine: Engine, api_request: ApiRequest) -> an.AnalyzeResponse:
    body = api_request.body_as(an.AnalyzeRequest)
    result = engine.analysis.analyze(body.text, body.analyses, model=body.model)
    return an.AnalyzeResponse(
        word_count=result.word_count,
        char_count=result.char_count,
        sentiment=_sentiment(result.sentiment) if result.sentiment else None,
        summary=_summary(result.summary) if result.summary else None,
        keywords=_keywords(result.keywords) if result.keywords else None,
        model=result.model,
        provider=result.provider,
    )


def generate(engine: Engine, api_request: ApiRequest) -> gen.GenerateResponse | StreamResult:
    body = api_request.body_as(gen.GenerateRequest)
    generate = engine.analysis.generate_stream if body.stream else engine.analysis.generate
    answer = generate(
        body.prompt,
        context=body.context,
        model=body.model,
        max_tokens=body.max_tokens,
        temperature=body.temperature,
    )
    if isinstance(answer, Completion):
        return _generated(answer)
    stream = answer
    try:
        # Waited for here, in the request's worker thread: an error before the first piece
        # (a prompt too long for the context, a refused upstream call) is then an ordinary
        # error response with its status, not a 200 stream that fails.
        first = next(stream, None)
    except BaseException:
        stream.close()
        raise
    return StreamResult(_generation_events(stream, first))


def _generation_events(
    stream: GenerationStream, first: str | None
) -> Generator[tuple[str, BaseModel], None, None]:
    try:
        if first is not None:
            yield gen.TOKEN_EVENT, gen.GenerateToken(text=first)
            for piece in stream:
                yield gen.TOKEN_EVENT, gen.GenerateToken(text=piece)
        assert stream.completion is not None  # set by the stream's end
        yield gen.DONE_EVENT, _generated(stream.completion)
    finally:
        stream.close()


def _generated(completion: Completion) -> gen.GenerateResponse:
    return gen.GenerateResponse(
        text=completion.text,
        model=completion.model,
        provider=completion.provider,
        finish_reason=completion.finish_reason,
        # Some OpenAI-compatible servers omit usage; the contract requires the object.
        usage=usage(completion.usage)
        if completion.usage is not None
        else Usage(prompt_tokens=0, total_tokens=0),
    )


def classify(engine: Engine, api_request: ApiRequest) -> an.ClassifyResponse:
    body = api_request.body_as(an.ClassifyRequest)
    result = engine.analysis.classify(
        body.text, body.categories, multi_label=body.multi_label, model=body.model
    )
    return an.ClassifyResponse(
        label=result.label,
        classifications=[
            an.Classification(category=c.category, confidence=c.confidence)
            for c in result.classifications
        ],
        multi_label=result.multi_label,
        text_preview=result.text_preview,
        model=result.model,
        provider=result.provider,
    )


def summarize(engine: Engine, api_request: ApiRequest) -> an.SummarizeResponse:
    body = api_request.body_as(an.SummarizeRequest)
    result = engine.analysis.summarize(body.text, max_length=body.max_length, model=body.model)
    return an.SummarizeResponse(
        summary=result.summary,
        key_points=result.key_points,
        word_count=result.word_count,
        model=result.model,
        provider=result.provider,
    )


def sentiment(engine: Engine, api_request: ApiRequest) -> an.SentimentResponse:
    body = api_request.body_as(an.SentimentRequest)
    result = engine.analysis.sentiment(body.text, model=body.model)
    converted = _sentiment(result)
    return an.SentimentResponse(
        sentiment=converted.sentiment,
        score=converted.score,
        confidence=converted.confidence,
        scores=converted.scores,
        model=result.model,
        provider=result.provider,
    )


def keywords(engine: Engine, api_request: ApiRequest) -> an.KeywordsResponse:
    body = api_request.body_as(an.KeywordsRequest)
    result = engine.analysis.keywords(body.text, max_keywords=body.max_keywords, model=body.model)
    return an.KeywordsResponse(
        keywords=_keywords(result).keywords, model=result.model, provider=result.provider
    )


HANDLERS: dict[str, Handler] = {
    "analysis_analyze": analyze,
    "analysis_generate": generate,
    "analysis_classify": classify,
    "analysis_summarize": summarize,
    "analysis_sentiment": sentiment,
    "analysis_keywords": keywords,
}
