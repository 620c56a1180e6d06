# syntax=docker/dockerfile:1
# Static outrider binary on a distroless, non-root base.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/outrider ./cmd/outrider

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/outrider /usr/local/bin/outrider
USER 65532:65532
EXPOSE 8686
ENTRYPOINT ["/usr/local/bin/outrider"]
CMD ["agent", "--config", "/etc/outrider/config.yaml"]
