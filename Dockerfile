# foresight's container image: `foresight run` as a non-root user.
#
#   make image                                  # podman or docker, whichever is present
#   docker build -t foresight:0.1.0 .
#
# Every compiled dependency ships manylinux wheels, so neither stage needs a compiler; the
# build stage keeps pip, the sources and the build backend out of the final image. The image
# holds what `foresight run` needs; optional extras are added with a build argument:
# `--build-arg EXTRAS=[learned]` for the `quantile_gbm` model, `[plots,learned]` for the demo.
#
# PYTHON_IMAGE may be any Debian-based image with Python 3.11 and its venv module, such as
# the one scripts/debian-base.sh makes from Debian packages when no registry is reachable.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# Optional extras of pyproject.toml, written as pip wants them: `[learned]`.
ARG EXTRAS=""
# A CA bundle for pip (behind an inspecting TLS proxy); unset, pip trusts its own bundle.
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/foresight
WORKDIR /src
# The dependencies first, in a layer of their own that a change to foresight's sources keeps.
COPY pyproject.toml ./
RUN python -c 'import sys, tomllib; \
project = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
extras = [e.strip() for e in sys.argv[1].strip("[]").split(",") if e.strip()]; \
wanted = project["dependencies"] + [d for e in extras for d in project["optional-dependencies"][e]]; \
print("\n".join(wanted))' "${EXTRAS}" > /tmp/requirements.txt \
    && /opt/foresight/bin/pip install --prefer-binary --requirement /tmp/requirements.txt
# On both stages, so that scripts/build-image.sh can remove this build's leftovers alone.
LABEL org.opencontainers.image.title=foresight
# The build context is exactly pyproject.toml, README.md and the packages: .dockerignore
# allows only those, and a test keeps its list equal to pyproject's packages.
COPY . ./
# Pruned after the install, as nothing foresight runs reads them: the asyncio copy of the
# Kubernetes client (foresight uses the synchronous one), zstandard's cffi backend (the C one
# is loaded), and the test suites shipped inside numpy (and scipy, scikit-learn if installed).
RUN /opt/foresight/bin/pip install --no-deps ".${EXTRAS}" \
    && /opt/foresight/bin/pip check \
    && /opt/foresight/bin/pip uninstall --yes pip setuptools \
    && cd /opt/foresight/lib/python3.11/site-packages \
    && rm -rf kubernetes/aio zstandard/_cffi.*.so \
    && find . -depth -type d -name tests \( -path './numpy/*' -o -path './scipy/*' \
       -o -path './sklearn/*' \) -exec rm -rf {} + \
    && /opt/foresight/bin/foresight --version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title=foresight
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
