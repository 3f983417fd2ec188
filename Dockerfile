# syntax=docker/dockerfile:1
# Build stage: compile TypeScript with the dev dependencies.
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY config/push-proxy.schema.json ./config/
RUN npx tsc -p tsconfig.json

# Runtime stage: production dependencies and the compiled code only.
FROM node:22-bookworm-slim
ARG BUILD_HASH=unknown
# PUSH_PROXY_REQUIRE_CONFIG: a container whose configuration was not mounted stops with exit code 2 (naming
# the paths it looked at) instead of starting test mode; PUSH_PROXY_MODE=test still runs the built-in test mode.
ENV NODE_ENV=production \
    PUSH_PROXY_BUILD_HASH=$BUILD_HASH \
    PUSH_PROXY_REQUIRE_CONFIG=true
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# config/ holds push-proxy.json (or the original's mattermost-push-proxy.json), certs/ the keys and
# certificates: both are mounted by the operator.
RUN mkdir -p config certs logs && chown -R node:node config certs logs
USER node
EXPOSE 8066
VOLUME ["/app/config", "/app/certs"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "dist/src/cli.js", "healthcheck"]
ENTRYPOINT ["node", "dist/src/cli.js"]
