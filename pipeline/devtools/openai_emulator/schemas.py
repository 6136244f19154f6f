"""The request bodies the emulator accepts, validated as strictly as the real API where it matters to us.

Unknown fields are allowed: the SDK sends parameters we have no use for, and the real API takes them too.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

__all__ = [
    "BatchCreateRequest",
    "ChatCompletionRequest",
    "ChatMessage",
    "ContentPart",
    "JsonSchemaFormat",
    "ResponseFormat",
]

MetadataKey = Annotated[str, StringConstraints(max_length=64)]
MetadataValue = Annotated[str, StringConstraints(max_length=512)]


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    @property
    def text(self) -> str:
        """The message's text; of a message in parts, the text parts joined."""
        if isinstance(self.content, list):
            return "".join(part.text or "" for part in self.content)
        return self.content or ""


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("json_schema is required when type is 'json_schema'")
        return self


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    response_format: ResponseFormat | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)

    @property
    def token_limit(self) -> int | None:
        """The most completion tokens the client takes; ``max_completion_tokens`` replaced ``max_tokens``."""
        return self.max_completion_tokens or self.max_tokens

    @property
    def conversation(self) -> str:
        """What the analyst reads: the user messages' text."""
        return "\n".join(message.text for message in self.messages if message.role == "user")

    @property
    def prompt_chars(self) -> int:
        return sum(len(message.text) for message in self.messages)


class BatchCreateRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    input_file_id: str = Field(min_length=1)
    # The real API serves more endpoints; the emulator answers chat completions only.
    endpoint: Literal["/v1/chat/completions"]
    completion_window: Literal["24h"]
    metadata: dict[MetadataKey, MetadataValue] | None = Field(default=None, max_length=16)
