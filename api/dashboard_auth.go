package api

import (
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/web"
)

// signInData is what sign_in.html shows.
type signInData struct {
	Email string
	Next  string
	Error string
}

// signInPage is GET /app/sign-in. Someone already signed in goes on to the dashboard.
func (h *handlers) signInPage(c *gin.Context) {
	next := c.Query("next")
	if !isDashboardTarget(next) {
		next = ""
	}
	if ck, err := c.Request.Cookie(sessionCookie); err == nil && ck.Value != "" {
		if s, err := h.Users.Session(c.Request.Context(), ck.Value); err == nil {
			h.seeOther(c, landing(next, s.User.Role))
			return
		}
	}
	dash(c).CSRF = h.formCSRF(c)
	h.page(c, http.StatusOK, "sign_in.html", signInData{Next: next})
}

// signIn is POST /app/sign-in: a new session in the cookie and on to the page asked for. A refusal
// shows the form again with one sentence, the same for an unknown address and a wrong password.
func (h *handlers) signIn(c *gin.Context) {
	next := c.PostForm("next")
	if !isDashboardTarget(next) {
		next = ""
	}
	email := c.PostForm("email")
	s, err := h.Users.SignIn(c.Request.Context(), core.SignInInput{Email: email, Password: c.PostForm("password"), Client: c.ClientIP()})
	if err != nil {
		var ce *core.Error
		if !errors.As(err, &ce) || (ce.Kind != core.KindUnauthorized && ce.Kind != core.KindRateLimited) {
			fail(c, err)
			return
		}
		status := http.StatusUnauthorized
		if ce.Kind == core.KindRateLimited {
			status = http.StatusTooManyRequests
			c.Header("Retry-After", strconv.Itoa(int(math.Ceil(ce.RetryAfter.Seconds()))))
		}
		h.page(c, status, "sign_in.html", signInData{Email: email, Next: next, Error: ce.Message})
		return
	}
	h.startSession(c, s)
	h.seeOther(c, landing(next, s.User.Role))
}

// landing is where a sign-in goes: the page asked for, else the person's home.
func landing(next string, role core.Role) string {
	if next != "" {
		return next
	}
	return homeOf(role)
}

// startSession puts a new session in the cookie (a new id at every sign-in); a session the
// browser had before ends.
func (h *handlers) startSession(c *gin.Context, s core.SignedIn) {
	if old, err := c.Request.Cookie(sessionCookie); err == nil && old.Value != "" {
		if err := h.Users.SignOut(c.Request.Context(), old.Value); err != nil {
			h.Log.WarnContext(c.Request.Context(), "dashboard: the previous session was not ended", "err", err)
		}
	}
	h.setCookie(c, sessionCookie, s.Token, core.SessionLifetime)
	h.clearCookie(c, csrfCookie)
}

// signOut is POST /app/sign-out: the session ends on the server and the cookie goes.
func (h *handlers) signOut(c *gin.Context) {
	d := dash(c)
	if d.Embedded {
		h.seeOther(c, "/app")
		return
	}
	if ck, err := c.Request.Cookie(sessionCookie); err == nil {
		if err := h.Users.SignOut(c.Request.Context(), ck.Value); err != nil {
			fail(c, err)
			return
		}
	}
	h.clearCookie(c, sessionCookie)
	h.seeOther(c, "/app/sign-in")
}

// inviteData is what invite.html shows.
type inviteData struct {
	Token     string
	Email     string
	Role      core.Role
	MinLength int
	Invalid   string
	Error     string
	Errors    web.FieldErrors
}

// invitePage is GET /app/invite/:token: the form to set a password, or why the link does not work.
func (h *handlers) invitePage(c *gin.Context) {
	token := c.Param("token")
	u, err := h.Users.CheckInvite(c.Request.Context(), token)
	if errors.Is(err, core.ErrInviteInvalid) {
		h.page(c, http.StatusNotFound, "invite.html", inviteData{Invalid: core.ErrInviteInvalid.Message})
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	dash(c).CSRF = h.formCSRF(c)
	h.page(c, http.StatusOK, "invite.html", inviteData{Token: token, Email: u.Email, Role: u.Role, MinLength: core.MinPasswordLength})
}

// acceptInvite is POST /app/invite/:token: the password is set, the link is used up and the
// person is signed in.
func (h *handlers) acceptInvite(c *gin.Context) {
	token := c.Param("token")
	s, err := h.Users.AcceptInvite(c.Request.Context(), token, c.PostForm("password"), c.PostForm("password_confirm"))
	if errors.Is(err, core.ErrInviteInvalid) {
		h.page(c, http.StatusNotFound, "invite.html", inviteData{Invalid: core.ErrInviteInvalid.Message})
		return
	}
	if fields, ok := web.FieldErrorsOf(err); ok {
		u, cerr := h.Users.CheckInvite(c.Request.Context(), token)
		if cerr != nil {
			fail(c, cerr)
			return
		}
		h.page(c, http.StatusUnprocessableEntity, "invite.html", inviteData{Token: token, Email: u.Email, Role: u.Role,
			MinLength: core.MinPasswordLength, Errors: fields})
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	h.startSession(c, s)
	h.seeOther(c, homeOf(s.User.Role))
}
