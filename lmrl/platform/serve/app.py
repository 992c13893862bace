"""The Serve application: an HTTP ingress with OpenAI's API in front of the batched policy.

Two deployments:

* ``ApiIngress`` (FastAPI, one light replica): API-key check, parsing and
  validation (every user mistake becomes a 4xx with an OpenAI-style body),
  rendering the chat history into the policy's observation
  (:class:`lmrl.policies.chat.ChatTemplate`), timeouts, overload answers,
  response formatting and server-sent events, request metrics.
* ``PolicyModel`` (:mod:`lmrl.platform.serve.model`, ``replicas`` of them):
  the policy, decoding concurrent requests in batches. Its
  ``max_ongoing_requests`` / ``max_queued_requests`` decide when the server
  is overloaded: a request beyond the queue gets 503 with ``Retry-After``.

Endpoints: ``POST /v1/chat/completions``, ``POST /v1/completions``,
``POST /v1/act``, ``GET /v1/models``, ``GET /v1/models/{id}`` and
``GET /healthz`` (the only one without an API key).

Example:
    >>> from ray import serve
    >>> config = ServeConfig(policy="runs/cs/export", api_key_sha256=key_digest("s3cret"))
    >>> serve.run(build_app(config), route_prefix="/")  # doctest: +SKIP
"""

# No `from __future__ import annotations` here: FastAPI must see the route parameters' real
# types (`Request`) through Serve's ingress wrapper, which string annotations defeat.
import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ValidationError
from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

import lmrl
from lmrl.platform.serve import metrics, schemas
from lmrl.platform.serve.auth import check_authorization
from lmrl.platform.serve.config import INGRESS_DEPLOYMENT, ServeConfig
from lmrl.platform.serve.errors import (
    ApiError,
    api_error_handler,
    bad_request,
    from_validation_error,
    http_error_handler,
)
from lmrl.platform.serve.model import PolicyModel
from lmrl.policies.decoding import DecodeRequest, DecodeResult, SamplingParams

logger = logging.getLogger("ray.serve")

#: Response header telling how many completions shared the request's batched pass.
BATCH_HEADER = "X-Lmrl-Batch-Rows"

api = FastAPI(title="lmrl policy API", docs_url=None, redoc_url=None, openapi_url=None)
api.add_exception_handler(ApiError, api_error_handler)
api.add_exception_handler(StarletteHTTPException, http_error_handler)


def default_model_name(policy_dir: str | Path) -> str:
    """The model id for a policy directory: its run's name (``runs/NAME/export`` -> ``NAME``)."""
    p = Path(policy_dir).resolve()
    return p.parent.name if p.name == "export" else p.name


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _check_unicode(value: Any, path: str = "body") -> None:
    """Rejects strings that cannot be encoded (lone surrogates from ``\\ud800`` escapes)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise bad_request(f"Invalid Unicode (an unpaired surrogate) in '{path}'.", param=path) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_unicode(key, path)
            _check_unicode(item, f"{path}.{key}" if path != "body" else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_unicode(item, f"{path}[{i}]")


def _sse(payload: BaseModel | str) -> str:
    """One server-sent event; as OpenAI does, a delta lists only what it sets, and usage only when set."""
    if isinstance(payload, str):
        return f"data: {payload}\n\n"
    data = payload.model_dump()
    for choice in data.get("choices", []):
        if "delta" in choice:
            choice["delta"] = {k: v for k, v in choice["delta"].items() if v is not None}
    if data.get("usage", 0) is None:
        del data["usage"]
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n"


@serve.deployment(name=INGRESS_DEPLOYMENT)
@serve.ingress(api)
class ApiIngress:
    """The HTTP front of a served policy.

    Args:
        model: Handle of the ``PolicyModel`` deployment.
        config: A :class:`ServeConfig` as a dict.
    """

    def __init__(self, model: DeploymentHandle, config: dict[str, Any]) -> None:
        from transformers import AutoConfig, AutoTokenizer

        from lmrl.envs.adapter import AdapterConfig
        from lmrl.policies.chat import ChatTemplate
        from lmrl.policies.decoding import context_length
        from lmrl.policies.text_policy import META_FILE, read_meta

        self.config = ServeConfig.model_validate(config)
        self.model = model
        path = self.config.policy
        self.meta = read_meta(path)
        self.adapter = AdapterConfig(**self.meta["adapter"])
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.context = context_length(AutoConfig.from_pretrained(path))
        self.template = ChatTemplate.from_meta(self.meta)
        self.model_name = self.config.model_name or default_model_name(path)
        self.created = int((Path(path) / META_FILE).stat().st_mtime)
        self.fingerprint = f"lmrl-{lmrl.__version__}"
        self.metrics = metrics.ingress_metrics()

    # --- plumbing --------------------------------------------------------------------------

    async def _answer(
        self, route: str, request: Request, handler: Callable[[Request], Awaitable[Response]], auth: bool = True
    ) -> Response:
        """Runs a route: auth, the handler, errors as OpenAI bodies, metrics."""
        start = time.perf_counter()
        try:
            if auth:
                self._authorize(request)
            response = await handler(request)
        except ApiError as exc:
            response = exc.response()
        except Exception:  # a bug, not a user mistake: log it, answer 500 without internals
            logger.exception("lmrl: unexpected error in %s", route)
            response = ApiError(500, "The server had an error while processing your request.").response()
        self.metrics["requests"].inc(tags={"route": route, "status": str(response.status_code)})
        self.metrics["latency_ms"].observe(1000 * (time.perf_counter() - start), tags={"route": route})
        return response

    def _authorize(self, request: Request) -> None:
        if not self.config.auth:
            return
        header = request.headers.get("authorization")
        if check_authorization(header, self.config.api_key_sha256 or ""):
            return
        message = (
            "You didn't provide an API key. Send it in an Authorization header using Bearer auth "
            "(Authorization: Bearer YOUR_KEY)."
            if not header
            else "Incorrect API key provided. Use the key `lmrl serve` printed, LMRL_API_KEY, or the --api-key-file."
        )
        raise ApiError(401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})

    async def _parse(self, request: Request, schema: type[BaseModel]) -> Any:
        limit = self.config.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"The request body is {declared} bytes; the limit is {limit}.", code="request_too_large")
        chunks, size = [], 0
        async for chunk in request.stream():  # stop reading at the limit, even without Content-Length
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"The request body is over the limit of {limit} bytes.", code="request_too_large")
            chunks.append(chunk)
        raw = b"".join(chunks)
        try:
            data = json.loads(raw, parse_constant=_no_constants)
        except (ValueError, RecursionError) as exc:
            detail = str(exc).split("\n")[0][:200] or type(exc).__name__
            raise bad_request(
                f"We could not parse the JSON body of your request ({detail}). Send a JSON object.",
                code="invalid_json",
            ) from None
        if not isinstance(data, dict):
            raise bad_request(f"The request body must be a JSON object, got {type(data).__name__}.", code="invalid_json")
        _check_unicode(data)
        try:
            return schema.model_validate(data)
        except ValidationError as exc:
            raise from_validation_error(exc) from None

    def _check_model(self, model: str | None) -> None:
        if model is not None and model != self.model_name:
            raise ApiError(
                404,
                f"The model `{model}` does not exist. This server serves `{self.model_name}` (GET /v1/models).",
                param="model",
                code="model_not_found",
            )

    def _actions(self, given: list[str] | None, param: str) -> tuple[str, ...]:
        """Admissible actions for a choose-mode policy (empty in generate mode)."""
        if self.adapter.action_mode != "choose":
            return ()
        actions = tuple(given) if given is not None else (self.template.actions or ())
        if not actions:
            raise bad_request(
                f"This policy picks among admissible actions and its env ({self.meta.get('env_id')}) has no fixed "
                "list; pass them as `admissible_actions`.",
                param=param,
            )
        if len(actions) > self.adapter.max_candidates:
            raise bad_request(
                f"At most {self.adapter.max_candidates} admissible actions are allowed (the policy was trained "
                f"with max_candidates={self.adapter.max_candidates}), got {len(actions)}.",
                param=param,
            )
        return actions

    def _params(self, req: schemas._Sampling, max_tokens: int | None) -> SamplingParams:
        c = self.config
        if req.n > c.max_n:
            raise bad_request(f"n must be <= {c.max_n} on this server, got {req.n}.", param="n")
        if max_tokens is not None and max_tokens > c.max_tokens_limit:
            raise bad_request(
                f"max_tokens must be <= {c.max_tokens_limit} on this server, got {max_tokens}.", param="max_tokens"
            )
        return SamplingParams(
            n=req.n,
            max_tokens=max_tokens,
            temperature=req.temperature,
            top_p=1.0 if req.top_p is None else req.top_p,
            stop=req.stop_list(),
            seed=req.seed,
        )

    def _check_length(self, text: str, max_tokens: int | None, param: str) -> None:
        from lmrl.policies.decoding import prompt_token_count

        if self.context is None:
            return
        prompt = prompt_token_count(self.tokenizer, self.adapter.prompt_format, text)
        if self.adapter.action_mode == "choose":
            completion = self.adapter.max_candidate_tokens
        else:
            completion = max_tokens or self.adapter.max_new_tokens
        if prompt + completion > self.context:
            raise bad_request(
                f"This model's maximum context length is {self.context} tokens. However, you requested "
                f"{prompt + completion} tokens ({prompt} in the prompt, {completion} for the completion). "
                "Please reduce the length of the prompt or of max_tokens.",
                param=param,
                code="context_length_exceeded",
            )

    async def _decode(self, request: DecodeRequest) -> DecodeResult:
        """Sends one request to the policy deployment: timeout -> 408, overload or lost replica -> 503."""
        from ray.exceptions import RayActorError
        from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError

        retry = {"Retry-After": str(self.config.retry_after_s)}
        response = self.model.decode.remote(request)
        try:
            return await asyncio.wait_for(response, timeout=self.config.request_timeout_s)
        except asyncio.TimeoutError:
            response.cancel()
            raise ApiError(
                408,
                f"The request did not finish within {self.config.request_timeout_s:g} s (request_timeout_s) and "
                "was cancelled. Retry, or ask for fewer tokens or completions.",
                code="request_timeout",
            ) from None
        except BackPressureError:
            raise ApiError(
                503,
                "The server is overloaded: every policy replica is busy and the request queue is full. "
                f"Retry after {self.config.retry_after_s} s.",
                code="overloaded",
                headers=retry,
            ) from None
        except (RayActorError, DeploymentUnavailableError):
            raise ApiError(
                503,
                "The policy replica serving this request stopped; a replacement is starting. Retry.",
                code="replica_unavailable",
                headers=retry,
            ) from None

    def _usage(self, results: list[DecodeResult]) -> schemas.Usage:
        prompt = sum(r.prompt_tokens for r in results)
        completion = sum(c.completion_tokens for r in results for c in r.completions)
        return schemas.Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)

    def _pieces(self, text: str) -> list[str]:
        """``text`` split at token boundaries, for streaming; the pieces join back to ``text``."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        pieces, previous = [], ""
        for k in range(1, len(ids) + 1):
            current = self.tokenizer.decode(ids[:k], skip_special_tokens=True)
            if current.startswith(previous) and len(current) > len(previous):
                pieces.append(current[len(previous) :])
                previous = current
        return pieces if "".join(pieces) == text else [text]

    # --- routes ----------------------------------------------------------------------------

    @api.get("/healthz")
    async def healthz(self, request: Request) -> Response:
        """Liveness and readiness: the policy deployment answered a forward pass (no API key needed)."""

        async def handler(_: Request) -> Response:
            try:
                info = await asyncio.wait_for(self.model.ping.remote(), timeout=min(10.0, self.config.request_timeout_s))
            except Exception as exc:  # any failure to reach a healthy replica
                detail = " ".join(str(exc).split())[:200] or type(exc).__name__
                return JSONResponse({"status": "unavailable", "detail": detail}, status_code=503)
            return JSONResponse({**info, "model": self.model_name})

        return await self._answer("/healthz", request, handler, auth=False)

    @api.get("/v1/models")
    async def list_models(self, request: Request) -> Response:
        """The served model (OpenAI's ``GET /v1/models``)."""

        async def handler(_: Request) -> Response:
            return JSONResponse(schemas.ModelList(data=[self._card()]).model_dump())

        return await self._answer("/v1/models", request, handler)

    @api.get("/v1/models/{model_id:path}")
    async def get_model(self, model_id: str, request: Request) -> Response:
        """One model by id (404 if it is not the served one)."""

        async def handler(_: Request) -> Response:
            self._check_model(model_id)
            return JSONResponse(self._card().model_dump())

        return await self._answer("/v1/models/{id}", request, handler)

    def _card(self) -> schemas.ModelCard:
        return schemas.ModelCard(
            id=self.model_name,
            created=self.created,
            env_id=self.meta.get("env_id"),
            action_mode=self.adapter.action_mode,
            context_length=self.context,
        )

    @api.post("/v1/chat/completions")
    async def chat_completions(self, request: Request) -> Response:
        """The policy's reply to a dialogue (``stream: true`` answers with server-sent events)."""
        return await self._answer("/v1/chat/completions", request, self._chat)

    async def _chat(self, request: Request) -> Response:
        req: schemas.ChatCompletionRequest = await self._parse(request, schemas.ChatCompletionRequest)
        self._check_model(req.model)
        max_tokens = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
        params = self._params(req, max_tokens)
        obs = self.template.observation(
            [(m.role, m.text()) for m in req.messages],
            self._actions(req.admissible_actions, "admissible_actions"),
            multi_turn=self.adapter.multi_turn,
        )
        self._check_length(obs["text"], max_tokens, "messages")
        history = tuple(obs.get("history", ()))
        result = await self._decode(DecodeRequest(obs["text"], obs["actions"], params, history))
        rid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        headers = {BATCH_HEADER: str(result.batch_rows)}
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            return StreamingResponse(
                self._chat_events(rid, created, result, include_usage),
                media_type="text/event-stream",
                headers={**headers, "Cache-Control": "no-cache"},
            )
        body = schemas.ChatCompletion(
            id=rid,
            created=created,
            model=self.model_name,
            choices=[
                schemas.ChatChoice(index=i, message=schemas.ResponseMessage(content=c.text), finish_reason=c.finish_reason)
                for i, c in enumerate(result.completions)
            ],
            usage=self._usage([result]),
            system_fingerprint=self.fingerprint,
        )
        return JSONResponse(body.model_dump(), headers=headers)

    async def _chat_events(self, rid: str, created: int, result: DecodeResult, include_usage: bool) -> AsyncIterator[str]:
        def chunk(choices: list[schemas.ChunkChoice], usage: schemas.Usage | None = None) -> str:
            return _sse(
                schemas.ChatCompletionChunk(
                    id=rid, created=created, model=self.model_name, choices=choices,
                    system_fingerprint=self.fingerprint, usage=usage,
                )
            )

        for i, c in enumerate(result.completions):
            yield chunk([schemas.ChunkChoice(index=i, delta=schemas.Delta(role="assistant", content=""))])
            for piece in self._pieces(c.text):
                yield chunk([schemas.ChunkChoice(index=i, delta=schemas.Delta(content=piece))])
            yield chunk([schemas.ChunkChoice(index=i, delta=schemas.Delta(), finish_reason=c.finish_reason)])
        if include_usage:
            yield chunk([], self._usage([result]))
        yield _sse("[DONE]")

    @api.post("/v1/completions")
    async def completions(self, request: Request) -> Response:
        """The policy's action for observation text (``prompt``), as a text completion."""
        return await self._answer("/v1/completions", request, self._complete)

    async def _complete(self, request: Request) -> Response:
        req: schemas.CompletionRequest = await self._parse(request, schemas.CompletionRequest)
        self._check_model(req.model)
        if req.best_of is not None and req.best_of != req.n:
            raise bad_request(f"best_of must equal n ({req.n}) here, got {req.best_of}.", param="best_of")
        params = self._params(req, req.max_tokens)
        prompts = req.prompts()
        if len(prompts) * req.n > self.config.max_batch_size:
            raise bad_request(
                f"len(prompt) * n must be <= {self.config.max_batch_size} on this server, "
                f"got {len(prompts)} * {req.n}.",
                param="prompt",
            )
        actions = self._actions(req.admissible_actions, "admissible_actions")
        for i, text in enumerate(prompts):
            self._check_length(text, req.max_tokens, "prompt" if isinstance(req.prompt, str) else f"prompt[{i}]")
        results = await asyncio.gather(*(self._decode(DecodeRequest(t, actions, params)) for t in prompts))
        rid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        choices = [
            (i * req.n + j, c) for i, result in enumerate(results) for j, c in enumerate(result.completions)
        ]
        headers = {BATCH_HEADER: str(max(r.batch_rows for r in results))}
        usage = self._usage(list(results))
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            return StreamingResponse(
                self._completion_events(rid, created, choices, usage if include_usage else None),
                media_type="text/event-stream",
                headers={**headers, "Cache-Control": "no-cache"},
            )
        body = schemas.Completion(
            id=rid,
            created=created,
            model=self.model_name,
            choices=[schemas.CompletionChoice(index=k, text=c.text, finish_reason=c.finish_reason) for k, c in choices],
            usage=usage,
            system_fingerprint=self.fingerprint,
        )
        return JSONResponse(body.model_dump(), headers=headers)

    async def _completion_events(
        self, rid: str, created: int, choices: list[tuple[int, Any]], usage: schemas.Usage | None
    ) -> AsyncIterator[str]:
        def event(index: int, text: str, finish: str | None) -> str:
            return _sse(
                schemas.Completion(
                    id=rid, created=created, model=self.model_name, system_fingerprint=self.fingerprint,
                    choices=[schemas.CompletionChoice(index=index, text=text, finish_reason=finish)],
                )
            )

        for k, c in choices:
            for piece in self._pieces(c.text):
                yield event(k, piece, None)
            yield event(k, "", c.finish_reason)
        if usage is not None:
            yield _sse(
                schemas.Completion(
                    id=rid, created=created, model=self.model_name, choices=[], usage=usage,
                    system_fingerprint=self.fingerprint,
                )
            )
        yield _sse("[DONE]")

    @api.post("/v1/act")
    async def act(self, request: Request) -> Response:
        """The action the policy takes for an env observation, with its log-probability."""
        return await self._answer("/v1/act", request, self._act)

    async def _act(self, request: Request) -> Response:
        req: schemas.ActRequest = await self._parse(request, schemas.ActRequest)
        self._check_model(req.model)
        actions = self._actions(req.admissible_actions, "admissible_actions")
        self._check_length(req.observation, None, "observation")
        params = SamplingParams(temperature=0 if req.greedy else None, seed=req.seed)
        result = await self._decode(DecodeRequest(req.observation, actions, params))
        (c,) = result.completions
        body = schemas.ActResponse(
            action=c.text,
            logprob=c.logprob,
            action_index=c.action_index,
            action_mode=self.adapter.action_mode,
            model=self.model_name,
            prompt_tokens=result.prompt_tokens,
        )
        return JSONResponse(body.model_dump(), headers={BATCH_HEADER: str(result.batch_rows)})


def build_app(config: ServeConfig) -> serve.Application:
    """The Serve application for ``config``: ``PolicyModel`` replicas behind ``ApiIngress``.

    Args:
        config: The deployment config (``policy`` should be an absolute path
            on every node, e.g. a shared file system in a cluster).

    Returns:
        An application for ``serve.run``.
    """
    model = PolicyModel.options(**config.model_options()).bind(
        config.policy,
        config.max_batch_size,
        config.batch_wait_timeout_s,
        torch_threads=max(1, int(config.num_cpus)),
    )
    return ApiIngress.options(**config.ingress_options()).bind(model, config.model_dump())


def app_builder(args: dict[str, Any]) -> serve.Application:
    """Application builder for Serve config files (``import_path: lmrl.platform.serve.app:app_builder``).

    Args:
        args: The application's ``args``: the fields of :class:`ServeConfig`.
    """
    return build_app(ServeConfig.model_validate(args))
