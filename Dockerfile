# Same build as the Apptainer recipe (Singularity): Debian bookworm + container/install.sh.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
        ca-certificates && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml setup.py README.md /opt/srprep/src/
COPY srprep /opt/srprep/src/srprep
COPY container/install.sh /opt/srprep/install.sh
COPY container/wheels /opt/srprep/wheels
COPY container/weights /opt/srprep/weights
RUN sh /opt/srprep/install.sh
ENV LC_ALL=C.UTF-8 LANG=C.UTF-8 PYTHONNOUSERSITE=1 NO_ET=1 \
    SRPREP_WEIGHTS_DIR=/opt/srprep/weights MPLBACKEND=Agg TORCH_HOME=/opt/srprep/torch \
    HF_HUB_OFFLINE=1 SRPREP_CONTAINER=docker
ENTRYPOINT ["/opt/venv/bin/srprep"]
