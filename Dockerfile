# One image for the three processes of a deployment; pick one with the command:
#   code server: dagster code-server start -h 0.0.0.0 -p 4000 -m numerai_assets.definitions
#   webserver:   dagster-webserver -h 127.0.0.1 -p 3000 -w workspace.yaml   (the default CMD)
#   daemon:      dagster-daemon run -w workspace.yaml
# For one ECS task per run, use deploy/ecs/dagster.yaml as $DAGSTER_HOME/dagster.yaml instead.
#
# Access. OSS Dagster has no authentication: whoever reaches the webserver can launch, re-execute
# and terminate runs, wipe assets, and read every run's config and logs. So the image binds it to
# 127.0.0.1, reachable only from inside its own container, task or pod (and `docker run -p 3000`
# reaches nothing). To expose it, put an authenticating proxy in front:
#   - an OAuth2/OIDC proxy (e.g. oauth2-proxy, --upstream=http://127.0.0.1:3000) as a sidecar in
#     the same ECS task or pod, the load balancer or Service pointing at the proxy's port; or
#   - an ALB whose listener authenticates (authenticate-oidc or authenticate-cognito) before it
#     forwards, the webserver then started with -h 0.0.0.0 and its port open only to that ALB's
#     security group.
# Restrict who the identity provider lets in (an allowed group or domain), not just that they
# log in. Never publish port 3000 without one of these; see deploy/ecs/README.md and
# deploy/k8s/README.md. For a look from your own machine only:
#   docker run -p 127.0.0.1:3000:3000 IMAGE dagster-webserver -h 0.0.0.0 -p 3000 -w workspace.yaml
# The code server listens on all interfaces because the webserver and daemon reach it over the
# network; its gRPC API is unauthenticated too, so only they may reach port 4000.
#
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
COPY deploy/production/dagster.yaml "$DAGSTER_HOME/dagster.yaml"
COPY workspace.yaml ./

# Only the code server's port: the webserver listens on loopback unless told otherwise (above).
EXPOSE 4000
CMD ["dagster-webserver", "-h", "127.0.0.1", "-p", "3000", "-w", "workspace.yaml"]
