# One image for every Switchboard process; the Deployment's command picks the process.
FROM python:3.11-slim
ENV UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/opt/venv PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
RUN pip install --no-cache-dir uv==0.13.8
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-group bench --no-install-project
COPY . .
RUN python -m grpc_tools.protoc -Iprotos --python_out=gen --grpc_python_out=gen $(find protos -name '*.proto') \
    && find gen -mindepth 1 -type d -exec touch {}/__init__.py \; \
    && printf '/app\n/app/gen\n' > "$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/switchboard_paths.pth"
USER 65534
CMD ["python", "-m", "gateway"]
