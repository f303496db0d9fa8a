"""Every default of the SDK, in one place (the `init` signature refers to these)."""

from __future__ import annotations

SDK_NAME = "llmlab-python"
SDK_VERSION = "0.1.0"

#: Events waiting in memory before the worker spills them to the disk spool.
DEFAULT_QUEUE_SIZE = 10_000
#: Events per HTTP request to the server.
DEFAULT_BATCH_SIZE = 100
#: Seconds an event may wait before its batch is sent.
DEFAULT_FLUSH_INTERVAL = 1.0
#: Seconds `flush()`, `shutdown()` and the exit hook wait at most.
DEFAULT_FLUSH_TIMEOUT = 5.0
#: Characters per token when a prompt or a stream has to be estimated.
CHARS_PER_TOKEN = 4
#: Providers whose model names the SDK recognises from an OpenAI-compatible base URL host.
OPENAI_COMPATIBLE_HOSTS = {
    "api.openai.com": "openai",
    "openai.azure.com": "azure",
    "api.groq.com": "groq",
    "api.together.xyz": "together",
    "api.together.ai": "together",
    "api.fireworks.ai": "fireworks",
    "api.deepseek.com": "deepseek",
    "api.mistral.ai": "mistral",
    "api.x.ai": "xai",
    "openrouter.ai": "openrouter",
    "generativelanguage.googleapis.com": "google",
    "api.cohere.ai": "cohere",
    "api.cohere.com": "cohere",
}
