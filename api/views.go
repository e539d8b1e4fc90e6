// Views for tools outside the gateway: couponctl prints lists and imports as the admin API answers
// them, so that a script reads the same fields from either.

package api

import "github.com/coupongate/coupongate/core"

// ListJSON is l as GET /api/v1/lists/{id} answers it, ready for encoding/json.
func ListJSON(l core.List) any { return toListResponse(l) }

// ImportJSON is i as GET /api/v1/lists/{id}/imports/{import_id} answers it, ready for
// encoding/json.
func ImportJSON(i core.Import) any { return toImportResponse(i) }
