# Build stage: `npm ci` runs `prepare`, which compiles TypeScript into dist/.
FROM node:22-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src src
COPY plugins plugins
COPY routes routes
COPY bench bench
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:22-slim
WORKDIR /app
ENV NODE_ENV=production PORT=8000 HOST=0.0.0.0
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY package.json .env.example ./
# Pool state (STATE_FILE=data/state.json); mount a volume here to keep it across containers.
RUN mkdir -p /app/data && chown node:node /app/data
VOLUME ["/app/data"]
EXPOSE 8000
USER node
CMD ["node", "dist/src/server.js"]
