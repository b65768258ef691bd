// Package deps pins the project's module dependencies while packages are being
// written, so `go mod tidy` keeps them. It is never imported.
package deps

import (
	_ "github.com/gin-gonic/gin"
	_ "github.com/go-jose/go-jose/v4"
	_ "github.com/go-resty/resty/v2"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/google/uuid"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/rs/zerolog"
	_ "go.etcd.io/bbolt"
)
