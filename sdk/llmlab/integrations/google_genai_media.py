"""Google Gen AI SDK (``google-genai``): Imagen through ``models.generate_images``.

Patched, sync and async (``client.models`` and ``client.aio.models``): the public
``generate_images``. Imagen bills per generated image (``image`` uses, priced per model:
docs/pricing.md, "Images and audio"); images withheld by the safety filter (a
``rai_filtered_reason`` and an empty image) are not billed and not counted. Gemini's own image models
answer ``generate_content`` and are priced by their IMAGE output tokens by the google_genai
integration. The provider is ``google`` for the Gemini API and ``vertex`` for Vertex AI.
"""

from __future__ import annotations

from typing import Any, ClassVar

from llmlab._tools import MAX_TOOL_USES
from llmlab.integrations import DidNotEnable, Integration
from llmlab.integrations._common import CallSpec, UsageSource
from llmlab.integrations.google_genai import _provider, _wrapper
from llmlab.pricing._media_prices import IMAGE
from llmlab.usage import Usage

__all__ = ["GoogleGenAIMediaIntegration", "imagen_usage"]

_NO_EXTRA: dict[str, Any] = {}


def _has_image(image: Any) -> bool:
    """Whether a ``types.Image`` holds an image (a filtered one is an empty ``Image()``)."""
    return image is not None and bool(getattr(image, "image_bytes", None)
                                      or getattr(image, "gcs_uri", None))


def imagen_usage(result: Any) -> Usage:
    """One ``image`` use per image a ``GenerateImagesResponse`` holds."""
    images = getattr(result, "generated_images", None) or ()
    count = sum(1 for item in images if _has_image(getattr(item, "image", None)))
    return Usage(tools={IMAGE: min(count, MAX_TOOL_USES)})


def _read(result: Any) -> tuple[str | None, UsageSource | None, dict[str, Any]]:
    return None, imagen_usage(result), _NO_EXTRA


class GoogleGenAIMediaIntegration(Integration):
    """Instruments Imagen image generation of the ``google-genai`` package."""

    identifier: ClassVar[str] = "google_genai_media"
    module: ClassVar[str] = "google.genai"
    distribution: ClassVar[str] = "google-genai"
    min_version: ClassVar[tuple[int, ...]] = (1, 0)

    def _targets(self) -> list[tuple[Any, str, CallSpec, bool]]:
        try:
            from google.genai.models import AsyncModels, Models
        except ImportError as exc:
            raise DidNotEnable(f"google-genai layout not recognised: {exc}") from exc
        spec = CallSpec(provider=_provider, operation="models.generate_images",
                        read_result=_read, is_stream=lambda kwargs: False)
        return [(Models, "generate_images", spec, False),
                (AsyncModels, "generate_images", spec, True)]

    def _wrapper(self, spec: Any, is_async: bool) -> Any:
        """The google_genai wrapper: the request's model read without its ``models/`` prefix."""
        return _wrapper(spec, is_async)
