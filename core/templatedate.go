package core

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // time zones the same on every host, whether it has a zoneinfo database or not
)

// dateLocale is how a locale writes a date: a fmt layout taking the day (%[1]d), the month's
// name (%[2]s) and the year (%[3]d), and the names of the months.
type dateLocale struct {
	layout string
	months *[12]string
}

var (
	monthsEN   = [12]string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}
	monthsDE   = [12]string{"Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober", "November", "Dezember"}
	monthsDEAT = [12]string{"Jänner", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober", "November", "Dezember"}
	monthsFR   = [12]string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"}
	monthsES   = [12]string{"enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre"}
	monthsIT   = [12]string{"gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre", "ottobre", "novembre", "dicembre"}
	monthsNL   = [12]string{"januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober", "november", "december"}
	monthsPT   = [12]string{"janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto", "setembro", "outubro", "novembro", "dezembro"}
	monthsTR   = [12]string{"Ocak", "Şubat", "Mart", "Nisan", "Mayıs", "Haziran", "Temmuz", "Ağustos", "Eylül", "Ekim", "Kasım", "Aralık"}
)

const (
	monthDayYear   = "%[2]s %[1]d, %[3]d"      // January 2, 2006
	dayMonthYear   = "%[1]d %[2]s %[3]d"       // 2 January 2006
	dayDotMonth    = "%[1]d. %[2]s %[3]d"      // 2. Januar 2006
	dayDeMonthDeYr = "%[1]d de %[2]s de %[3]d" // 2 de enero de 2006
)

// localeOrder lists the supported locales (BCP 47 tags) in documentation order.
var localeOrder = []string{
	"en-US", "en-GB", "en-AU", "en-CA", "en-IE", "en-NZ",
	"de-DE", "de-AT", "de-CH",
	"fr-FR", "fr-BE", "fr-CA", "fr-CH",
	"es-ES", "es-MX",
	"it-IT",
	"nl-NL", "nl-BE",
	"pt-BR", "pt-PT",
	"tr-TR",
}

var dateLocales = map[string]dateLocale{
	"en-US": {monthDayYear, &monthsEN}, "en-CA": {monthDayYear, &monthsEN},
	"en-GB": {dayMonthYear, &monthsEN}, "en-AU": {dayMonthYear, &monthsEN},
	"en-IE": {dayMonthYear, &monthsEN}, "en-NZ": {dayMonthYear, &monthsEN},
	"de-DE": {dayDotMonth, &monthsDE}, "de-CH": {dayDotMonth, &monthsDE}, "de-AT": {dayDotMonth, &monthsDEAT},
	"fr-FR": {dayMonthYear, &monthsFR}, "fr-BE": {dayMonthYear, &monthsFR},
	"fr-CA": {dayMonthYear, &monthsFR}, "fr-CH": {dayMonthYear, &monthsFR},
	"es-ES": {dayDeMonthDeYr, &monthsES}, "es-MX": {dayDeMonthDeYr, &monthsES},
	"it-IT": {dayMonthYear, &monthsIT},
	"nl-NL": {dayMonthYear, &monthsNL}, "nl-BE": {dayMonthYear, &monthsNL},
	"pt-BR": {dayDeMonthDeYr, &monthsPT}, "pt-PT": {dayDeMonthDeYr, &monthsPT},
	"tr-TR": {dayMonthYear, &monthsTR},
}

// languageDefaults are the locales a bare language stands for.
var languageDefaults = map[string]string{
	"en": "en-US", "de": "de-DE", "fr": "fr-FR", "es": "es-ES", "it": "it-IT", "nl": "nl-NL", "pt": "pt-BR", "tr": "tr-TR",
}

// localeIndex finds a locale by its lower-cased tag.
var localeIndex = func() map[string]string {
	m := map[string]string{}
	for _, l := range localeOrder {
		m[strings.ToLower(l)] = l
	}
	for lang, l := range languageDefaults {
		m[lang] = l
	}
	return m
}()

// Locales returns the locales templates may have, as BCP 47 tags: en-US, en-GB, en-AU, en-CA,
// en-IE, en-NZ, de-DE, de-AT, de-CH, fr-FR, fr-BE, fr-CA, fr-CH, es-ES, es-MX, it-IT, nl-NL,
// nl-BE, pt-BR, pt-PT and tr-TR. A template's locale is matched regardless of case and with _
// for -; a bare language stands for its first region here (en → en-US, pt → pt-BR). The
// default is en-US.
func Locales() []string { return append([]string(nil), localeOrder...) }

// canonicalLocale returns the supported locale s names ("" is en-US).
func canonicalLocale(s string) (string, bool) {
	s = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "_", "-")
	if s == "" {
		return "en-US", true
	}
	l, ok := localeIndex[s]
	return l, ok
}

// formatDate writes t's date (in t's location) the way locale does; locale is canonical.
func formatDate(t time.Time, locale string) string {
	l := dateLocales[locale]
	return fmt.Sprintf(l.layout, t.Day(), l.months[t.Month()-1], t.Year())
}

// lastDay is the last instant before end, in zone: the day a code expiring at end can last be
// used on.
func lastDay(end time.Time, zone *time.Location) time.Time {
	return end.Add(-time.Nanosecond).In(zone)
}

// zones caches the time zones loaded so far, by name.
var zones sync.Map

var errLocalZone = errors.New("the server's local time zone is not a template time zone")

// loadZone returns the IANA time zone name ("" is UTC), refusing "Local".
func loadZone(name string) (*time.Location, error) {
	if z, ok := zones.Load(name); ok {
		return z.(*time.Location), nil
	}
	if name == "Local" {
		return nil, errLocalZone
	}
	z, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	zones.Store(name, z)
	return z, nil
}
