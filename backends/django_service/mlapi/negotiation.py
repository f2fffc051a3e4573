"""DRF content negotiation that never refuses: every body we render is JSON.

DRF's default negotiation answers 406 to ``Accept: text/html`` and honours ``?format=``;
the contract has neither, and non-JSON bodies (subtitles, audio) bypass rendering anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request


class JsonOnlyNegotiation(BaseContentNegotiation):
    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self,
        request: Request,
        renderers: Iterable[BaseRenderer],
        format_suffix: str | None = None,
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        media_type: Any = renderer.media_type
        return renderer, str(media_type)
