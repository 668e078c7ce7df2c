# qwen-gateway: two stages. The build stage needs the dev dependencies (`npm ci` runs `prepare`,
# which compiles TypeScript into dist/); the runtime stage installs only the production ones.
FROM node:22-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src src
COPY plugins plugins
COPY routes routes
COPY bench bench
RUN npm ci --no-audit --no-fund

FROM node:22-slim
WORKDIR /app
# STATE_FILE defaults to data/state.json (below /app); with REDIS_URL it is used only when set explicitly.
ENV NODE_ENV=production PORT=8000 HOST=0.0.0.0
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` (the TypeScript build) needs dev dependencies; dist/ comes from the build stage.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist dist
COPY admin-ui admin-ui
COPY .env.example ./
# Pool state (identity health, tokens sealed with STATE_SECRET); mount a volume here to keep it.
RUN mkdir -p /app/data && chown node:node /app/data
VOLUME ["/app/data"]
EXPOSE 8000
USER node
# Liveness: /health answers 200 while the process serves (Node 22 has fetch; the slim image has no curl).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# SIGTERM drains (SHUTDOWN_GRACE_MS, default 20 s) inside Docker's and Kubernetes' stop timeouts.
STOPSIGNAL SIGTERM
CMD ["node", "dist/src/server.js"]
