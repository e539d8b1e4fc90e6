package core

import (
	"strings"
	"unicode"
)

// RecipientKey is the normalized identity of a recipient, the key under which allocations are
// found again: the external id when given, else the email (trimmed, lower-cased), else the phone
// (digits and a leading +). It is "" when the recipient has no identifier.
func RecipientKey(r Recipient) string {
	switch {
	case strings.TrimSpace(r.ExternalID) != "":
		return "ext:" + strings.TrimSpace(r.ExternalID)
	case strings.TrimSpace(r.Email) != "":
		return "email:" + strings.ToLower(strings.TrimSpace(r.Email))
	case strings.TrimSpace(r.Phone) != "":
		return "phone:" + normalizePhone(r.Phone)
	}
	return ""
}

// RecipientKeys are the keys a bare search string could stand for (external id, email or phone).
func RecipientKeys(s string) []string {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	keys := []string{"ext:" + s, "email:" + strings.ToLower(s)}
	if p := normalizePhone(s); len(p) > 1 {
		keys = append(keys, "phone:"+p)
	}
	return keys
}

func normalizePhone(p string) string {
	var b strings.Builder
	for i, r := range strings.TrimSpace(p) {
		if unicode.IsDigit(r) || (i == 0 && r == '+') {
			b.WriteRune(r)
		}
	}
	return b.String()
}
