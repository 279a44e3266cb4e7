"""The OpenAI embeddings wire format: request validation, response and error bodies."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np

from quart_app.embedder.runtime import INPUT_TYPES, InputType, Vectors

EncodingFormat = Literal["float", "base64"]
ErrorType = Literal["invalid_request_error", "server_error", "service_unavailable_error"]


class WireError(Exception):
    """A request the embedder refuses; carries the HTTP status and the OpenAI error fields."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str,
        param: str | None = None,
        error_type: ErrorType = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.error_type: ErrorType = error_type

    def body(self) -> dict[str, Any]:
        return error_body(self.message, error_type=self.error_type, code=self.code, param=self.param)


@dataclass(frozen=True)
class EmbeddingRequest:
    """A validated POST /v1/embeddings body."""

    inputs: list[str]
    input_type: InputType
    encoding_format: EncodingFormat
    model: str | None


def error_body(message: str, *, error_type: ErrorType, code: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def parse_embedding_request(body: object, *, dimension: int, max_inputs: int) -> EmbeddingRequest:
    """Validate the JSON body; raises WireError (400, or 413 for more than `max_inputs` inputs)."""
    if not isinstance(body, dict):
        raise WireError(400, "the request body must be a JSON object", code="invalid_body")
    data = cast(dict[str, Any], body)
    raw = data.get("input")
    if isinstance(raw, str):
        inputs = [raw]
    elif isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        inputs = cast(list[str], raw)
    else:
        raise WireError(
            400,
            f"'input' must be a string or a list of strings, got {_describe(raw)} (token arrays are not supported)",
            code="invalid_input",
            param="input",
        )
    if not inputs:
        raise WireError(400, "'input' is an empty list; send at least one string", code="empty_input", param="input")
    empty = [i for i, text in enumerate(inputs) if not text]
    if empty:
        raise WireError(
            400,
            f"'input' holds empty string(s) at index {empty[:10]}; every input must have text",
            code="empty_input",
            param="input",
        )
    if len(inputs) > max_inputs:
        raise WireError(
            413,
            f"'input' holds {len(inputs)} strings; this embedder takes at most {max_inputs} per request;"
            " split the batch",
            code="too_many_inputs",
            param="input",
        )
    input_type = data.get("input_type", "passage")
    if input_type not in INPUT_TYPES:
        raise WireError(
            400,
            f"'input_type' is {input_type!r}; use 'query' or 'passage'",
            code="invalid_input_type",
            param="input_type",
        )
    encoding_format = data.get("encoding_format") or "float"
    if encoding_format not in ("float", "base64"):
        raise WireError(
            400,
            f"'encoding_format' is {encoding_format!r}; use 'float' or 'base64'",
            code="invalid_encoding_format",
            param="encoding_format",
        )
    dimensions = data.get("dimensions")
    if dimensions is not None and dimensions != dimension:
        raise WireError(
            400,
            f"'dimensions' is {dimensions!r} but this model only yields {dimension}-d vectors; omit it",
            code="invalid_dimensions",
            param="dimensions",
        )
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise WireError(400, f"'model' must be a string, got {_describe(model)}", code="invalid_model", param="model")
    return EmbeddingRequest(
        inputs=inputs,
        input_type=cast(InputType, input_type),
        encoding_format=cast(EncodingFormat, encoding_format),
        model=model,
    )


def embedding_response(vectors: Vectors, *, model: str, tokens: int, encoding_format: EncodingFormat) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    for index, row in enumerate(vectors):
        embedding: list[float] | str
        if encoding_format == "base64":
            embedding = base64.b64encode(np.asarray(row, dtype="<f4").tobytes()).decode("ascii")
        else:
            embedding = row.tolist()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _describe(value: object) -> str:
    if isinstance(value, list):
        kinds = sorted({type(item).__name__ for item in value})
        return f"a list of {', '.join(kinds)}"
    return "nothing" if value is None else f"a {type(value).__name__}"
