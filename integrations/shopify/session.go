package shopify

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// SessionTokenSkew is the clock skew allowed on a session token's exp and nbf (the value of
// Shopify's libraries).
const SessionTokenSkew = 10 * time.Second

// maxSessionToken bounds the token VerifySessionToken reads; Shopify's are about 600 bytes.
const maxSessionToken = 8 << 10

// b64url is the JWT encoding: base64url without padding, and strict so that a signature has
// exactly one accepted spelling.
var b64url = base64.RawURLEncoding.Strict()

// SessionClaims are the claims of a verified session token.
type SessionClaims struct {
	// Shop is the shop the token is for, lower-cased: dest without "https://".
	Shop string
	// Issuer is iss, "https://<shop>/admin".
	Issuer string
	// Dest is dest, "https://<shop>".
	Dest string
	// Audience is the app's API key (client id) the token was issued to.
	Audience string
	// Sub is the Shopify staff user id (sub), as a string.
	Sub string
	// Sid is the session id of that user and app (sid).
	Sid string
	// Jti is the token's unique id (jti).
	Jti string
	// Exp is when the token expires (exp).
	Exp time.Time
	// Nbf is when the token starts to be valid (nbf); zero when the token has none.
	Nbf time.Time
	// Iat is when the token was issued (iat); zero when the token has none.
	Iat time.Time
}

// VerifySessionToken checks a session token from the embedded app (the bearer token, or the
// id_token query parameter) and returns its claims. It uses the standard library only and accepts
// the token only when
//   - it is three base64url parts, no longer than 8 KiB;
//   - the header's alg is exactly HS256 (none, RS256 and every other algorithm are refused, as is a
//     crit header), and typ, when present, is JWT;
//   - the signature is the HMAC-SHA256 of "header.payload" keyed with apiSecret (hmac.Equal);
//   - aud is apiKey (a string, or an array holding it);
//   - exp is present and now is before exp + SessionTokenSkew; nbf, when present, is no later than
//     now + SessionTokenSkew;
//   - dest is "https://<shop>" for a valid shop domain, and iss is exactly dest + "/admin".
//
// The error wraps ErrInvalidToken, ErrSignature, ErrExpired, ErrInvalidShop or ErrNoSecret.
func VerifySessionToken(token, apiKey, apiSecret string, now time.Time) (SessionClaims, error) {
	if apiSecret == "" || apiKey == "" {
		return SessionClaims{}, fmt.Errorf("%w: VerifySessionToken needs both the API key and the API secret", ErrNoSecret)
	}
	if token == "" {
		return SessionClaims{}, fmt.Errorf("%w: the session token is empty", ErrInvalidToken)
	}
	if len(token) > maxSessionToken {
		return SessionClaims{}, fmt.Errorf("%w: the session token is longer than %d bytes", ErrInvalidToken, maxSessionToken)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return SessionClaims{}, fmt.Errorf("%w: a session token has three dot-separated parts, this one has %d", ErrInvalidToken, len(parts))
	}

	headerJSON, err := b64url.DecodeString(parts[0])
	if err != nil {
		return SessionClaims{}, fmt.Errorf("%w: the token header is not base64url", ErrInvalidToken)
	}
	var header struct {
		Alg  string          `json:"alg"`
		Typ  string          `json:"typ"`
		Crit json.RawMessage `json:"crit"`
	}
	if err := json.Unmarshal(headerJSON, &header); err != nil {
		return SessionClaims{}, fmt.Errorf("%w: the token header is not a JSON object of strings", ErrInvalidToken)
	}
	if header.Alg != "HS256" {
		return SessionClaims{}, fmt.Errorf("%w: the token's algorithm is %q; only HS256 is accepted", ErrInvalidToken, header.Alg)
	}
	if header.Typ != "" && !strings.EqualFold(header.Typ, "JWT") {
		return SessionClaims{}, fmt.Errorf("%w: the token's type is %q, not JWT", ErrInvalidToken, header.Typ)
	}
	if header.Crit != nil {
		return SessionClaims{}, fmt.Errorf("%w: the token header has critical extensions (crit), which are not supported", ErrInvalidToken)
	}

	sig, err := b64url.DecodeString(parts[2])
	if err != nil || len(sig) != sha256.Size {
		return SessionClaims{}, fmt.Errorf("%w: the token signature is not a base64url HMAC-SHA256", ErrSignature)
	}
	if !hmac.Equal(sig, sessionSum(parts[0]+"."+parts[1], apiSecret)) {
		return SessionClaims{}, fmt.Errorf("%w: the token signature does not match (wrong secret or altered token)", ErrSignature)
	}

	payload, err := b64url.DecodeString(parts[1])
	if err != nil {
		return SessionClaims{}, fmt.Errorf("%w: the token payload is not base64url", ErrInvalidToken)
	}
	if !isObject(payload) {
		return SessionClaims{}, fmt.Errorf("%w: the token payload is not a JSON object", ErrInvalidToken)
	}
	var raw sessionPayload
	if err := json.Unmarshal(payload, &raw); err != nil {
		return SessionClaims{}, fmt.Errorf("%w: the token's claims are not readable: %v", ErrInvalidToken, err)
	}

	if !raw.Aud.has(apiKey) {
		return SessionClaims{}, fmt.Errorf("%w: the token's audience is not this app's API key", ErrInvalidToken)
	}
	if !raw.Exp.set {
		return SessionClaims{}, fmt.Errorf("%w: the token has no exp claim", ErrInvalidToken)
	}
	if !now.Before(raw.Exp.t.Add(SessionTokenSkew)) {
		return SessionClaims{}, fmt.Errorf("%w: the token expired at %s", ErrExpired, raw.Exp.t.UTC().Format(time.RFC3339))
	}
	if raw.Nbf.set && now.Add(SessionTokenSkew).Before(raw.Nbf.t) {
		return SessionClaims{}, fmt.Errorf("%w: the token is not valid before %s", ErrExpired, raw.Nbf.t.UTC().Format(time.RFC3339))
	}
	host, ok := strings.CutPrefix(raw.Dest, "https://")
	if !ok {
		return SessionClaims{}, fmt.Errorf("%w: the token's dest %q is not https://<shop>", ErrInvalidShop, raw.Dest)
	}
	shop, ok := CanonicalShop(host)
	if !ok {
		return SessionClaims{}, fmt.Errorf("%w: the token's dest %q is not https://<name>.myshopify.com", ErrInvalidShop, raw.Dest)
	}
	if raw.Iss != raw.Dest+"/admin" {
		return SessionClaims{}, fmt.Errorf("%w: the token's issuer %q is not its dest followed by /admin", ErrInvalidToken, raw.Iss)
	}
	return SessionClaims{
		Shop: shop, Issuer: raw.Iss, Dest: raw.Dest, Audience: apiKey,
		Sub: string(raw.Sub), Sid: raw.Sid, Jti: raw.Jti,
		Exp: raw.Exp.t, Nbf: raw.Nbf.t, Iat: raw.Iat.t,
	}, nil
}

// SignSessionToken returns a session token for c as Shopify issues it (header {"alg":"HS256",
// "typ":"JWT"}, signed with apiSecret): what a fake Shopify or a test hands to the embedded app.
// Issuer and Dest default to those of c.Shop; a zero Nbf or Iat is left out.
func SignSessionToken(c SessionClaims, apiSecret string) string {
	if c.Dest == "" {
		c.Dest = "https://" + c.Shop
	}
	if c.Issuer == "" {
		c.Issuer = c.Dest + "/admin"
	}
	claims := map[string]any{"iss": c.Issuer, "dest": c.Dest, "aud": c.Audience, "sub": c.Sub,
		"exp": c.Exp.Unix(), "jti": c.Jti, "sid": c.Sid}
	if !c.Nbf.IsZero() {
		claims["nbf"] = c.Nbf.Unix()
	}
	if !c.Iat.IsZero() {
		claims["iat"] = c.Iat.Unix()
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(err) // strings and integers always marshal
	}
	signed := b64url.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + b64url.EncodeToString(payload)
	return signed + "." + b64url.EncodeToString(sessionSum(signed, apiSecret))
}

func sessionSum(signed, secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(signed))
	return m.Sum(nil)
}

// sessionPayload is the JSON of a session token's claims.
type sessionPayload struct {
	Iss  string      `json:"iss"`
	Dest string      `json:"dest"`
	Aud  audience    `json:"aud"`
	Sub  flexString  `json:"sub"`
	Exp  numericDate `json:"exp"`
	Nbf  numericDate `json:"nbf"`
	Iat  numericDate `json:"iat"`
	Jti  string      `json:"jti"`
	Sid  string      `json:"sid"`
}

// audience is the aud claim: one string or an array of strings (RFC 7519 §4.1.3).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*a = nil
		return nil
	}
	if len(b) > 0 && b[0] == '[' {
		var many []string
		if err := json.Unmarshal(b, &many); err != nil {
			return fmt.Errorf("aud must be a string or an array of strings")
		}
		*a = many
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err != nil {
		return fmt.Errorf("aud must be a string or an array of strings")
	}
	*a = audience{one}
	return nil
}

func (a audience) has(key string) bool {
	for _, v := range a {
		if v == key {
			return true
		}
	}
	return false
}

// numericDate is a JWT NumericDate: a JSON number of seconds since the epoch. Fractions are
// truncated; negative, non-finite and absurdly large values are refused.
type numericDate struct {
	t   time.Time
	set bool
}

func (d *numericDate) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*d = numericDate{}
		return nil
	}
	if len(b) == 0 || b[0] == '"' || b[0] == '{' || b[0] == '[' || b[0] == 't' || b[0] == 'f' {
		return fmt.Errorf("a time claim must be a number of seconds")
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1<<40 {
		return fmt.Errorf("a time claim must be a number of seconds since 1970")
	}
	*d = numericDate{t: time.Unix(int64(f), 0), set: true}
	return nil
}
