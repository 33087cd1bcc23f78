# The image docker-compose.yml runs: the project installed once, when the image is built (not on
# every start, and not into the read-only source mount the compose file used to install from).
# tests/test_container.py runs this file's COPY, install and CMD lines without a container engine.
FROM python:3.11-slim
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY insights insights
COPY collector collector
COPY exporters exporters
COPY dashboard dashboard
COPY scoring scoring
COPY endpoints endpoints
COPY live live
COPY monitoring monitoring
COPY alerts alerts
RUN pip install --no-cache-dir . && rm -rf /src
# Not root: a user of its own, owning the data volume (telemetry.duckdb, blob/, admin.key).
RUN useradd --create-home --uid 10001 insights && mkdir /data && chown insights:insights /data
USER insights
WORKDIR /home/insights
ENV INSIGHTS_DATA_DIR=/data
VOLUME /data
EXPOSE 8080 8501
CMD ["insights", "up", "--data-dir", "/data", "--host", "0.0.0.0", "--port", "8080", "--no-dashboard"]
