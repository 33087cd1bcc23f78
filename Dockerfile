# The image docker-compose.yml runs: the project installed once, when the image is built (not on
# every start, and not into the read-only source mount the compose file used to install from).
FROM python:3.11-slim
WORKDIR /src
COPY pyproject.toml README.md ./
COPY insights insights
COPY collector collector
COPY exporters exporters
COPY dashboard dashboard
COPY scoring scoring
RUN pip install --no-cache-dir . && rm -rf /src
WORKDIR /work
