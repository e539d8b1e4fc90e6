package api

import (
	"github.com/gin-gonic/gin"

	"github.com/coupongate/coupongate/core"
)

// notYet answers for routes whose handlers are being written.
func notYet(c *gin.Context) {
	fail(c, &core.Error{Kind: core.KindNotFound, Code: "not_implemented", Message: "not implemented yet"})
}

func (h *handlers) createBatch(c *gin.Context) { notYet(c) }
func (h *handlers) listBatches(c *gin.Context) { notYet(c) }
func (h *handlers) exportBatch(c *gin.Context) { notYet(c) }
func (h *handlers) searchCodes(c *gin.Context) { notYet(c) }
func (h *handlers) removeCodes(c *gin.Context) { notYet(c) }
func (h *handlers) getCode(c *gin.Context)     { notYet(c) }
func (h *handlers) removeCode(c *gin.Context)  { notYet(c) }
func (h *handlers) exportCodes(c *gin.Context) { notYet(c) }
