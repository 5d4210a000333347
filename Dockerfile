# normgen service image: the Fastify API with the bundled ONNX models baked in.
#
#   docker build -t normgen .                                       CPU, on the official node:20-slim
#   docker build --build-arg VARIANT=cuda -t normgen:cuda .         CUDA 12 + cuDNN 9 runtime with
#                                                                   onnxruntime-node's CUDA provider
#   bash scripts/docker-build.sh                                    offline: local Debian base, no pull
#
# Stages: build (tsc → dist/) · deps (production node_modules only) · runtime-cpu | runtime-cuda · final.
# Build with BuildKit (Docker ≥ 23 default; DOCKER_BUILDKIT=1 before): it builds only the stages the
# chosen VARIANT needs, so a CPU build never pulls the CUDA base.
# The container runs as uid 10001, listens on $PORT (default 8080), is ready when GET /readyz is 200,
# and drains in-flight requests on SIGTERM.
ARG BASE_IMAGE=node:20-slim
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04
ARG VARIANT=cpu

# --- build: compile the service (TypeScript → dist/) ------------------------------------------------
FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# --- deps: production dependencies; the CUDA variant downloads ORT's CUDA/TensorRT provider libraries --
FROM ${BASE_IMAGE} AS deps
ARG VARIANT
WORKDIR /src
COPY package.json package-lock.json ./
RUN if [ "$VARIANT" = cuda ]; then export ONNXRUNTIME_NODE_INSTALL=cuda12; else export ONNXRUNTIME_NODE_INSTALL=skip; fi \
 && npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force \
 && rm -rf node_modules/onnxruntime-node/bin/napi-v6/darwin node_modules/onnxruntime-node/bin/napi-v6/win32 \
           node_modules/onnxruntime-node/bin/napi-v6/linux/arm64

# --- runtime bases ------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime-cpu

FROM ${CUDA_IMAGE} AS runtime-cuda
COPY --from=build /usr/local/bin/node /usr/local/bin/node
ENV NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility EXECUTION_PROVIDERS=cuda,cpu

# --- final ----------------------------------------------------------------------------------------------
FROM runtime-${VARIANT}
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080 MODELS_DIR=/app/models LOG_LEVEL=info HOME=/tmp \
    MALLOC_MMAP_THRESHOLD_=1048576
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY models ./models
COPY public ./public
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
CMD ["node", "dist/server.js"]
