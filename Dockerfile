# The mcastkit tools image: the relay and the probe run from it on the ECS (EC2) cluster.
# Build it where Docker runs (`cdk deploy` builds and pushes it as an asset):
#   docker build -t mcastkit .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
COPY pyproject.toml ./
COPY mcastkit ./mcastkit
# pyproject names README.md as the long description; an empty one keeps the README out of the
# build context, so a documentation change is no new image (and no relay restart) at deploy.
RUN touch README.md \
    && pip install --no-cache-dir . \
    && rm -rf /src

# A fixed numeric uid/gid: the ECS task definitions run the container as 10001:10001 and
# with a read-only root filesystem, so nothing here may expect to write outside /tmp.
RUN groupadd --system --gid 10001 mcastkit \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin mcastkit
USER 10001:10001
WORKDIR /

ENTRYPOINT ["mcastkit"]
CMD ["--help"]
