package api

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// health answers 200 when PostgreSQL and Redis answer, 503 naming the one that does not.
func (h *handlers) health(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	status := http.StatusOK
	for name, dep := range map[string]HealthChecker{"postgres": h.Postgres, "redis": h.Redis} {
		if err := dep.Ping(ctx); err != nil {
			checks[name] = "down"
			status = http.StatusServiceUnavailable
			h.Log.WarnContext(c.Request.Context(), "health check failed", "dependency", name, "err", err)
			continue
		}
		checks[name] = "ok"
	}
	body := gin.H{"status": "ok", "checks": checks}
	if status != http.StatusOK {
		body["status"] = "unavailable"
		for name, s := range checks {
			if s == "down" {
				body["error"] = gin.H{"code": "dependency_unavailable", "message": name + " is not answering", "details": []any{}}
			}
		}
	}
	c.JSON(status, body)
}
