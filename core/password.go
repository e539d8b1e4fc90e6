package core

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"runtime"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Password length bounds, in characters. The upper bound keeps a hash request cheap to refuse.
const (
	MinPasswordLength = 12
	MaxPasswordLength = 256
)

// PasswordParams are argon2id's costs. A stored hash carries the parameters it was made with, so
// changing them later does not lock anyone out.
type PasswordParams struct {
	// Memory is in KiB.
	Memory  uint32
	Time    uint32
	Threads uint8
}

// DefaultPasswordParams are the production costs: 64 MiB, one pass, two lanes (RFC 9106's second
// recommended option with less memory, the OWASP minimum being 19 MiB).
var DefaultPasswordParams = PasswordParams{Memory: 64 * 1024, Time: 1, Threads: 2}

const (
	saltLen = 16
	hashLen = 32
)

// hashSlots bounds the argon2id computations running at once, so a burst of sign-ins costs at
// most this many times Memory.
var hashSlots = make(chan struct{}, max(2, runtime.NumCPU()))

// HashPassword returns the PHC string of password under argon2id with p:
// $argon2id$v=19$m=…,t=…,p=…$salt$hash (base64 without padding).
func HashPassword(password string, p PasswordParams) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	sum := argonKey(password, salt, p, hashLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(sum)), nil
}

// CheckPassword reports whether password matches the PHC string encoded, comparing in constant
// time. An unreadable encoding never matches.
func CheckPassword(password, encoded string) bool {
	p, salt, want, ok := parsePasswordHash(encoded)
	if !ok {
		return false
	}
	got := argonKey(password, salt, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

func argonKey(password string, salt []byte, p PasswordParams, n uint32) []byte {
	hashSlots <- struct{}{}
	defer func() { <-hashSlots }()
	return argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, n)
}

// parsePasswordHash reads a PHC argon2id string, refusing parameters outside sane bounds (a
// corrupted row must not make a sign-in allocate gigabytes).
func parsePasswordHash(encoded string) (PasswordParams, []byte, []byte, bool) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return PasswordParams{}, nil, nil, false
	}
	var p PasswordParams
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return PasswordParams{}, nil, nil, false
	}
	if p.Memory < 8 || p.Memory > 1<<20 || p.Time < 1 || p.Time > 16 || p.Threads < 1 {
		return PasswordParams{}, nil, nil, false
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return PasswordParams{}, nil, nil, false
	}
	sum, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(sum) < 16 || len(sum) > 64 {
		return PasswordParams{}, nil, nil, false
	}
	return p, salt, sum, true
}

// checkNewPassword applies the rules for a password a person chooses.
func checkNewPassword(password, confirm string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinPasswordLength:
		return Invalid("password", fmt.Sprintf("Choose a password of at least %d characters.", MinPasswordLength))
	case n > MaxPasswordLength:
		return Invalid("password", fmt.Sprintf("Choose a password of at most %d characters.", MaxPasswordLength))
	case !utf8.ValidString(password):
		return Invalid("password", "The password contains characters that cannot be read.")
	case password != confirm:
		return Invalid("password_confirm", "The two passwords are not the same.")
	}
	return nil
}
