package api

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/web"
)

// dashboardTeam registers the team page of the settings.
func (h *handlers) dashboardTeam(owner *gin.RouterGroup) {
	owner.GET("/settings/team", h.teamPage)
	owner.POST("/settings/team", h.inviteMember)
	owner.POST("/settings/team/:user_id/remove", h.removeMember)
}

// teamPerson is one row of the team table.
type teamPerson struct {
	core.User
	You bool
}

// invitedLink is the link of an invite just made, shown once.
type invitedLink struct {
	Email string
	URL   string
}

// teamData is what team.html shows.
type teamData struct {
	People  []teamPerson
	Invited *invitedLink
	Error   string
	Errors  web.FieldErrors
	Email   string
	Role    core.Role
}

// teamPage is GET /app/settings/team.
func (h *handlers) teamPage(c *gin.Context) {
	h.renderTeam(c, http.StatusOK, teamData{Role: core.RoleStaff})
}

func (h *handlers) renderTeam(c *gin.Context, status int, data teamData) {
	team, err := h.Users.Team(c.Request.Context(), merchantID(c))
	if err != nil {
		fail(c, err)
		return
	}
	d := dash(c)
	for _, u := range team {
		data.People = append(data.People, teamPerson{User: u, You: d.User != nil && d.User.ID == u.ID})
	}
	h.page(c, status, "team.html", data)
}

// inviteMember is POST /app/settings/team: an invite for email with role; its link is shown once
// on the page that answers.
func (h *handlers) inviteMember(c *gin.Context) {
	d := dash(c)
	email, role := c.PostForm("email"), core.Role(c.PostForm("role"))
	in := core.InviteInput{Email: email, Role: role}
	if d.User != nil {
		in.InvitedBy = &d.User.ID
	}
	u, token, err := h.Users.Invite(c.Request.Context(), merchantID(c), in)
	if fields, ok := web.FieldErrorsOf(err); ok {
		h.renderTeam(c, http.StatusUnprocessableEntity, teamData{Errors: fields, Email: email, Role: role})
		return
	}
	var ce *core.Error
	if errors.As(err, &ce) && ce.Kind == core.KindConflict {
		h.renderTeam(c, http.StatusConflict, teamData{Error: ce.Message, Email: email, Role: role})
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	h.renderTeam(c, http.StatusOK, teamData{Role: core.RoleStaff,
		Invited: &invitedLink{Email: u.Email, URL: core.InviteLink(h.Config.AppURL, token)}})
}

// removeMember is POST /app/settings/team/:user_id/remove. Someone who removes themselves is
// signed out.
func (h *handlers) removeMember(c *gin.Context) {
	id, ok := pathUUID(c, "user_id", core.ErrUserNotFound)
	if !ok {
		return
	}
	err := h.Users.Remove(c.Request.Context(), merchantID(c), id)
	if errors.Is(err, core.ErrLastOwner) {
		h.renderTeam(c, http.StatusConflict, teamData{Error: core.ErrLastOwner.Message, Role: core.RoleStaff})
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	if d := dash(c); d.User != nil && d.User.ID == id {
		h.clearCookie(c, sessionCookie)
		h.seeOther(c, "/app/sign-in")
		return
	}
	h.seeOther(c, "/app/settings/team")
}
