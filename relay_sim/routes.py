"""The providers' endpoints, each under its provider's path prefix ``/{provider}``.

=======================================================  =========  =====================
path                                                     family     base_url
=======================================================  =========  =====================
``POST /{p}/v1/chat/completions``, ``/v1/embeddings``     openai     ``{sim}/{p}/v1``
``GET  /{p}/v1/models``                                   openai, anthropic
``POST /{p}/v1beta/models/{model}:generateContent``      gemini     ``{sim}/{p}/v1beta``
``POST /{p}/v1beta/models/{model}:streamGenerateContent?alt=sse``
``POST /{p}/v1beta/models/{model}:embedContent``, ``:batchEmbedContents``
``GET  /{p}/v1beta/models``                               gemini
``POST /{p}/v1/messages``                                 anthropic  ``{sim}/{p}``
``POST /{p}/api/chat``, ``/api/embed``, ``GET /api/tags``   ollama     ``{sim}/{p}``
=======================================================  =========  =====================
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay_core.catalogue.models import ApiFamily
from relay_sim.families import (
    AnthropicFamily,
    Family,
    GeminiFamily,
    OllamaFamily,
    OpenAIFamily,
)
from relay_sim.faults import FaultKind, SimFault
from relay_sim.pipeline import JSON, Parser, Renderer, check_key, error_response, serve
from relay_sim.state import SimState

Endpoint = Callable[[Request], Awaitable[Response]]


def _models(
    state: SimState, families: Mapping[ApiFamily, Family], apis: tuple[ApiFamily, ...]
) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        provider = state.providers.get(request.path_params["provider"])
        if provider is None or provider.config.api not in apis:
            fault = SimFault(FaultKind.not_found, f"Invalid URL (GET {request.url.path})")
            return error_response(families[apis[0]], fault)
        family = families[provider.config.api]
        try:
            check_key(family, provider, request)
        except SimFault as fault:
            return error_response(family, fault)
        return Response(family.models_body(provider.config), media_type=JSON)

    return endpoint


def provider_routes(state: SimState) -> list[Route]:
    openai, gemini = OpenAIFamily(), GeminiFamily()
    anthropic, ollama = AnthropicFamily(), OllamaFamily()
    families: Mapping[ApiFamily, Family] = MappingProxyType(
        {"openai": openai, "gemini": gemini, "anthropic": anthropic, "ollama": ollama}
    )

    def call(
        family: Family, parse: Parser | None = None, render: Renderer | None = None
    ) -> Endpoint:
        read = parse or family.parse_chat
        write = render or family.render_chat

        async def endpoint(request: Request) -> Response:
            return await serve(state, family, request, read, write)

        return endpoint

    embeddings = call(openai, openai.parse_embeddings, openai.render_embeddings)
    gemini_chat = call(gemini)
    gemini_embed = call(gemini, gemini.parse_embeddings, gemini.render_embeddings)

    async def gemini_models(request: Request) -> Response:  # generate, or embed
        return await (gemini_embed if gemini.embeds(request) else gemini_chat)(request)

    post, get = ["POST"], ["GET"]
    return [
        Route("/{provider}/v1/chat/completions", call(openai), methods=post),
        Route("/{provider}/v1/embeddings", embeddings, methods=post),
        Route("/{provider}/v1/messages", call(anthropic), methods=post),
        Route(
            "/{provider}/v1/models", _models(state, families, ("openai", "anthropic")), methods=get
        ),
        Route("/{provider}/v1beta/models/{target}", gemini_models, methods=post),
        Route("/{provider}/v1beta/models", _models(state, families, ("gemini",)), methods=get),
        Route("/{provider}/api/chat", call(ollama), methods=post),
        Route(
            "/{provider}/api/embed",
            call(ollama, ollama.parse_embeddings, ollama.render_embeddings),
            methods=post,
        ),
        Route("/{provider}/api/tags", _models(state, families, ("ollama",)), methods=get),
    ]
