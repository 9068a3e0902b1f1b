"""The REST API's routes, one router per area: documents, query, graph, health.

Route functions carry no docstrings on purpose: FastAPI would publish them as the operation's description in the
OpenAPI schema, where each route's summary already says what it does.
"""
