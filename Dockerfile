# syntax=docker/dockerfile:1
# Static outrider binary on a distroless, non-root base.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The build context has no .git: pass what `outrider version` reports, e.g.
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg COMMIT=$(git rev-parse HEAD) --build-arg BUILD_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) .
ARG VERSION=dev
ARG COMMIT=
ARG BUILD_DATE=
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
    -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.date=${BUILD_DATE}" \
    -o /out/outrider ./cmd/outrider
# The default data_dir (file positions, the durable queue) and the secrets folder,
# owned by the non-root user, so `docker run` with only a mounted config works and a
# new named volume mounted there is writable.
RUN mkdir -p /rootfs/var/lib/outrider /rootfs/vault/secrets /rootfs/etc/outrider && \
    chown -R 65532:65532 /rootfs/var/lib/outrider /rootfs/vault/secrets

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/outrider /usr/local/bin/outrider
COPY --from=build /rootfs/ /
USER 65532:65532
EXPOSE 8686
ENTRYPOINT ["/usr/local/bin/outrider"]
CMD ["agent", "--config", "/etc/outrider/config.yaml"]
