package shopify

import "regexp"

// shopDomainRE is the shop domain rule of Shopify's docs, anchored at both ends and applied to the
// lower-cased domain.
var shopDomainRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*\.myshopify\.com$`)

// maxShopName is a DNS label's limit: the "<name>" of "<name>.myshopify.com" is one label.
const maxShopName = 63

// ValidShopDomain reports whether shop is a shop domain "<name>.myshopify.com", where name is
// letters, digits and hyphens and does not start with a hyphen. ASCII upper case is accepted
// (it is lower-cased first); anything else is rejected: a scheme, path, port, userinfo, trailing
// dot, whitespace, non-ASCII letters (even those Unicode lower-cases to ASCII, such as the Kelvin
// sign), admin.shopify.com/store/… URLs and other Shopify hosts.
func ValidShopDomain(shop string) bool {
	_, ok := CanonicalShop(shop)
	return ok
}

// CanonicalShop returns shop lower-cased when ValidShopDomain accepts it. Store and compare shops
// in this form.
func CanonicalShop(shop string) (string, bool) {
	const suffix = len(".myshopify.com")
	if len(shop) <= suffix || len(shop) > maxShopName+suffix {
		return "", false
	}
	b := make([]byte, len(shop))
	for i := 0; i < len(shop); i++ {
		c := shop[i]
		if 'A' <= c && c <= 'Z' { // ASCII only: strings.ToLower would turn U+212A into 'k'
			c += 'a' - 'A'
		}
		b[i] = c
	}
	lower := string(b)
	if !shopDomainRE.MatchString(lower) {
		return "", false
	}
	return lower, true
}
