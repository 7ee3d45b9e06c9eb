# One image for every Sluice service; docker-compose.yml picks the service with the command.
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY proto ./proto
COPY services ./services
COPY plugins ./plugins
RUN npm run build && npm prune --omit=dev

FROM node:24-slim
WORKDIR /app
ENV NODE_ENV=production SLUICE_GRPC_ADDR=0.0.0.0:50051
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/proto/gen ./proto/gen
# The dashboard (/ui): plain files, served as they are.
COPY ui ./ui
EXPOSE 50051 9464
USER node
ENTRYPOINT ["node", "--enable-source-maps", "--import", "./dist/services/telemetry/bootstrap.js"]
CMD ["dist/services/main.js"]
