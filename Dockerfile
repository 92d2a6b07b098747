# foresight's container image: `foresight run` as a non-root user.
#
#   docker build -t foresight:0.1.0 .
#
# Every compiled dependency ships manylinux wheels, so neither stage needs a compiler; the
# build stage keeps pip, the sources and the build backend out of the final image. The
# simulator is included for `foresight demo` and `foresight simulator serve`.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/foresight
WORKDIR /src
COPY pyproject.toml README.md ./
COPY runtime/ runtime/
COPY tsdb/ tsdb/
COPY promql/ promql/
COPY autoscaler/ autoscaler/
COPY collectors/ collectors/
COPY alerts/ alerts/
COPY dashboards/ dashboards/
COPY simulator/ simulator/
RUN /opt/foresight/bin/pip install --prefer-binary . \
    && /opt/foresight/bin/pip uninstall --yes pip setuptools \
    && /opt/foresight/bin/foresight --version

FROM ${PYTHON_IMAGE}
# A fixed UID/GID, so that the chart's runAsUser and fsGroup match the files' owner.
RUN groupadd --system --gid 10001 foresight \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /var/lib/foresight --shell /usr/sbin/nologin foresight \
    && install --directory --owner=10001 --group=10001 --mode=0750 /var/lib/foresight
COPY --from=build /opt/foresight /opt/foresight
ENV PATH=/opt/foresight/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib
# The relative default `store.data_dir` (data) lands here when no settings file says otherwise.
WORKDIR /var/lib/foresight
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["foresight"]
CMD ["run"]
