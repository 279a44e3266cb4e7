"""Request and response models of the PHP app's contract (beta and 4.0-5.3), validated with pydantic."""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ValidationError, field_validator
from quart import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from quart_app.http_errors import BodyValidationError, ContractError, fastapi_detail
from quart_app.services.answer import MAX_CTX_LIMIT
from quart_app.source_fields import php_array_key, text_problem

MIB = 1024 * 1024

ScopeType = Literal["provider", "source"]
AccessOp = Literal["allow", "deny"]


def _storable(value: str) -> str:
    # PostgreSQL text cannot hold NUL: the query would fail with a database error (500) instead of naming the field
    if problem := text_problem(value):
        raise ValueError(problem)
    return value


# every string of a request body: it ends up in a SQL parameter
Text = Annotated[str, AfterValidator(_storable)]


# a user id in a list the PHP app may have built from array keys
UserId = Annotated[Text, BeforeValidator(php_array_key)]


class Query(BaseModel):
    """POST /query and POST /docSearch (ctxLimit is the result limit there; useContext is ignored)."""

    userId: Text
    query: Text
    useContext: bool = True
    scopeType: ScopeType | None = None
    scopeList: list[Text] | None = None
    ctxLimit: int = 20

    @field_validator("userId", "query")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("ctxLimit")
    @classmethod
    def _in_range(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        if value > MAX_CTX_LIMIT:
            raise ValueError(f"must be at most {MAX_CTX_LIMIT}")
        return value


class DocSearchQuery(Query):
    """POST /docSearch: upstream's body; `withPassages` (ours, `ccb search`) adds each document's best passage."""

    withPassages: bool = False


class UpdateAccessDeclarativeRequest(BaseModel):
    """POST /updateAccessDeclarative: exactly these users may read the source."""

    userIds: list[UserId]
    sourceId: Text


class UpdateAccessRequest(BaseModel):
    """POST /updateAccess: allow or deny these users one source."""

    op: AccessOp
    userIds: list[UserId]
    sourceId: Text


class UpdateAccessProviderRequest(BaseModel):
    """POST /updateAccessProvider: allow or deny these users every source of a provider."""

    op: AccessOp
    userIds: list[UserId]
    providerId: Text


class DeleteSourcesRequest(BaseModel):
    """POST /deleteSources (4.0+): delete these sources for everyone."""

    sourceIds: list[Text]


class BetaDeleteSourcesRequest(BaseModel):
    """POST /deleteSources (PHP 4.0.0-beta2/3): delete these sources of one user."""

    userId: Text
    sourceNames: list[Text]


class DeleteProviderRequest(BaseModel):
    """POST /deleteProvider: delete every source of a provider."""

    providerKey: Text


class DeleteUserRequest(BaseModel):
    """POST /deleteUser: remove a user's access everywhere (documents nobody can read go too)."""

    userId: Text


class BetaDeleteByProviderRequest(BaseModel):
    """POST /deleteSourcesByProvider (beta): delete one user's sources of a provider."""

    userId: Text
    providerKey: Text


class BetaDeleteByProviderForAllUsersRequest(BaseModel):
    """POST /deleteSourcesByProviderForAllUsers (beta): delete every user's sources of a provider."""

    providerKey: Text


M = TypeVar("M", bound=BaseModel)


async def read_json_body() -> bytes:
    """The raw body; an empty one is FastAPI's 'Field required' at loc ['body'], one over the limit a 413."""
    try:
        raw = await request.get_data(as_text=False)
    except RequestEntityTooLarge:
        limit_mb = current_app.config["MAX_CONTENT_LENGTH"] // MIB
        raise ContractError(
            f"The request body is larger than the limit of {limit_mb} MiB for JSON requests (max_json_request_mb); "
            "send fewer ids per request, or raise the limit in config.yaml",
            413,
        ) from None
    assert isinstance(raw, bytes)
    if not raw.strip():
        raise BodyValidationError([{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}])
    return raw


def validate_body(model: type[M], raw: bytes) -> M:
    """The body as `model`, or BodyValidationError (422) with FastAPI's detail list."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise BodyValidationError(fastapi_detail(exc)) from None


async def parse_body(model: type[M]) -> M:
    """Read and validate the JSON request body as `model`."""
    return validate_body(model, await read_json_body())
