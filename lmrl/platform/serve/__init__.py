"""Serving trained policies as Ray Serve deployments with an OpenAI-compatible API.

Modules (import them directly; this package imports nothing heavy):

* :mod:`~lmrl.platform.serve.config`: ``ServeConfig`` and the Serve config YAML;
* :mod:`~lmrl.platform.serve.app`: the application (``ApiIngress`` + ``PolicyModel``);
* :mod:`~lmrl.platform.serve.model`: the batched policy deployment;
* :mod:`~lmrl.platform.serve.schemas`: request and response bodies;
* :mod:`~lmrl.platform.serve.errors`: OpenAI-style error bodies;
* :mod:`~lmrl.platform.serve.auth`: API keys;
* :mod:`~lmrl.platform.serve.metrics`: Prometheus metrics;
* :mod:`~lmrl.platform.serve.launch`: starting Ray and Serve, deploying;
* :mod:`~lmrl.platform.serve.client`: the ``lmrl chat`` terminal client.

``docs/serving.md`` is the user guide.
"""
