package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coupongate/coupongate/core"
)

// optional is a JSON field that may be absent, null, or a value; PATCH uses it to tell "leave as is"
// from "clear".
type optional[T any] struct {
	Set   bool
	Null  bool
	Value T
}

func (o *optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}

// ptr is the field as *T for create (absent or null → nil).
func (o optional[T]) ptr() *T {
	if !o.Set || o.Null {
		return nil
	}
	v := o.Value
	return &v
}

// patch is the field as **T for update (absent → nil, null → pointer to nil).
func (o optional[T]) patch() **T {
	if !o.Set {
		return nil
	}
	p := o.ptr()
	return &p
}

type listRequest struct {
	Name              *string             `json:"name" validate:"omitempty,max=200"`
	Description       *string             `json:"description" validate:"omitempty,max=2000"`
	Kind              *string             `json:"kind" validate:"omitempty,oneof=unique fixed"`
	FixedCode         *string             `json:"fixed_code"`
	MaxAssignments    *int64              `json:"max_assignments" validate:"omitempty,gte=0"`
	UsesPerCode       *int                `json:"uses_per_code" validate:"omitempty,gte=1,lte=1000000"`
	RequireIssued     *bool               `json:"require_issued"`
	StartsAt          optional[time.Time] `json:"starts_at"`
	ExpiresAt         optional[time.Time] `json:"expires_at"`
	LowStockThreshold *int64              `json:"low_stock_threshold" validate:"omitempty,gte=0"`
	ReassignWindow    *int64              `json:"reassign_window" validate:"omitempty,gte=0,lte=315360000"`
	ValidFor          optional[int64]     `json:"valid_for"`
	CaseInsensitive   *bool               `json:"case_insensitive"`
	Archived          *bool               `json:"archived"`
}

type listResponse struct {
	ID                string      `json:"id"`
	Name              string      `json:"name"`
	Description       string      `json:"description"`
	Kind              string      `json:"kind"`
	FixedCode         *string     `json:"fixed_code"`
	MaxAssignments    *int64      `json:"max_assignments"`
	UsesPerCode       int         `json:"uses_per_code"`
	RequireIssued     bool        `json:"require_issued"`
	StartsAt          *time.Time  `json:"starts_at"`
	ExpiresAt         *time.Time  `json:"expires_at"`
	LowStockThreshold int64       `json:"low_stock_threshold"`
	ReassignWindow    int64       `json:"reassign_window"`
	ValidFor          *int64      `json:"valid_for"`
	CaseInsensitive   bool        `json:"case_insensitive"`
	Status            string      `json:"status"`
	Counts            core.Counts `json:"counts"`
	CreatedAt         time.Time   `json:"created_at"`
	UpdatedAt         time.Time   `json:"updated_at"`
}

func toListResponse(l core.List) listResponse {
	r := listResponse{
		ID: l.ID.String(), Name: l.Name, Description: l.Description, Kind: string(l.Kind), UsesPerCode: l.UsesPerCode,
		RequireIssued: l.RequireIssued, StartsAt: l.StartsAt, ExpiresAt: l.ExpiresAt, LowStockThreshold: l.LowStockThreshold,
		ReassignWindow: int64(l.ReassignWindow / time.Second), CaseInsensitive: l.CaseInsensitive,
		Status: string(l.Status(time.Now())), Counts: l.Counts, CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt,
	}
	if l.ValidFor > 0 {
		s := int64(l.ValidFor / time.Second)
		r.ValidFor = &s
	}
	if l.Kind == core.KindFixed {
		code, max := l.FixedCode, l.MaxAssignments
		r.FixedCode, r.MaxAssignments = &code, &max
	}
	return r
}

func (h *handlers) createList(c *gin.Context) {
	var req listRequest
	if !h.bindJSON(c, &req) {
		return
	}
	in := core.ListInput{
		UsesPerCode: req.UsesPerCode, StartsAt: req.StartsAt.ptr(), ExpiresAt: req.ExpiresAt.ptr(), ReassignWindow: req.ReassignWindow,
		ValidFor: req.ValidFor.ptr(),
	}
	setFrom(&in.Name, req.Name)
	setFrom(&in.Description, req.Description)
	setFrom(&in.FixedCode, req.FixedCode)
	setFrom(&in.MaxAssignments, req.MaxAssignments)
	setFrom(&in.RequireIssued, req.RequireIssued)
	setFrom(&in.LowStockThreshold, req.LowStockThreshold)
	setFrom(&in.CaseInsensitive, req.CaseInsensitive)
	if req.Kind != nil {
		in.Kind = core.ListKind(*req.Kind)
	}
	l, err := h.Lists.Create(c.Request.Context(), merchantID(c), in)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, toListResponse(l))
}

func (h *handlers) getList(c *gin.Context) {
	id, ok := pathUUID(c, "list_id", core.ErrListNotFound)
	if !ok {
		return
	}
	l, err := h.Lists.Get(c.Request.Context(), merchantID(c), id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toListResponse(l))
}

func (h *handlers) listLists(c *gin.Context) {
	p, ok := page(c)
	if !ok {
		return
	}
	lists, next, err := h.Lists.List(c.Request.Context(), merchantID(c), p)
	if err != nil {
		fail(c, err)
		return
	}
	renderPage(c, lists, next, toListResponse)
}

func (h *handlers) updateList(c *gin.Context) {
	id, ok := pathUUID(c, "list_id", core.ErrListNotFound)
	if !ok {
		return
	}
	var req listRequest
	if !h.bindJSON(c, &req) {
		return
	}
	p := core.ListPatch{
		Name: req.Name, Description: req.Description, FixedCode: req.FixedCode, CaseInsensitive: req.CaseInsensitive,
		MaxAssignments: req.MaxAssignments, UsesPerCode: req.UsesPerCode, RequireIssued: req.RequireIssued,
		StartsAt: req.StartsAt.patch(), ExpiresAt: req.ExpiresAt.patch(), LowStockThreshold: req.LowStockThreshold,
		ReassignWindow: req.ReassignWindow, ValidFor: req.ValidFor.patch(), Archived: req.Archived,
	}
	if req.Kind != nil {
		k := core.ListKind(*req.Kind)
		p.Kind = &k
	}
	l, err := h.Lists.Update(c.Request.Context(), merchantID(c), id, p)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toListResponse(l))
}

func (h *handlers) deleteList(c *gin.Context) {
	id, ok := pathUUID(c, "list_id", core.ErrListNotFound)
	if !ok {
		return
	}
	if err := h.Lists.Delete(c.Request.Context(), merchantID(c), id); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func setFrom[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

func parseInt(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }
