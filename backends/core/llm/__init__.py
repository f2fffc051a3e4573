"""Text generation: the provider interface and the OpenAI-compatible chat provider."""

from backends.core.llm.base import Completion, GenerationStream, LLMProvider
from backends.core.llm.factory import NO_LLM_MESSAGE, build_llm_provider
from backends.core.llm.openai_chat import OpenAIChatProvider

__all__ = [
    "NO_LLM_MESSAGE",
    "Completion",
    "GenerationStream",
    "LLMProvider",
    "OpenAIChatProvider",
    "build_llm_provider",
]
