# One image for the three processes of a deployment; pick one with the command:
#   code server: dagster code-server start -h 0.0.0.0 -p 4000 -m numerai_assets.definitions
# For one ECS task per run, use deploy/ecs/dagster.yaml as $DAGSTER_HOME/dagster.yaml instead.
#   webserver:   dagster-webserver -h 0.0.0.0 -p 3000 -w workspace.yaml
#   daemon:      dagster-daemon run -w workspace.yaml
# Environment (none has a default here; see README.md, "Deployment"):
#   DAGSTER_PG_HOST, DAGSTER_PG_PORT, DAGSTER_PG_DB, DAGSTER_PG_USERNAME, DAGSTER_PG_PASSWORD
#   MONGO_URL, MONGO_DB_NAME, S3_DATASET_BUCKET, S3_UPLOAD_BUCKET, S3_ENDPOINT_URL,
#   S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION, DAGSTER_IO_BUCKET, NUMERAI_SENSOR_INTERVAL_SECONDS
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DAGSTER_HOME=/opt/dagster/home \
    NUMERAI_ASSETS_HOME=/opt/dagster/numerai_assets

WORKDIR /opt/dagster/app
COPY setup.py pyproject.toml README.md ./
COPY numerai_assets ./numerai_assets
RUN pip install --no-cache-dir . \
    && mkdir -p "$DAGSTER_HOME" "$NUMERAI_ASSETS_HOME" \
    && python -c "import numerai_assets.definitions"  # fails the build on a broken install
COPY dagster.yaml "$DAGSTER_HOME/dagster.yaml"
COPY workspace.yaml ./

EXPOSE 3000 4000
CMD ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "workspace.yaml"]
