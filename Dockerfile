# Builds the Coupongate commands (gateway, worker, couponctl, healthcheck) into one small image;
# docker-compose.yml and deploy/kubernetes run it as the migration, the gateway and the worker. It
# runs as the distroless image's nonroot user (uid 65532) and has no shell: health checks run
# /usr/local/bin/healthcheck. The build context is cut down by .dockerignore.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/...

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/gateway"]
