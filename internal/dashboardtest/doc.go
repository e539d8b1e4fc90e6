// Package dashboardtest holds the dashboard's journeys in a real browser (headless Chromium through
// internal/browsertest) against a whole Coupongate with the real PostgreSQL and Redis (through
// internal/apptest). It has no code of its own outside the tests; main_test.go has the helpers
// every journey uses.
package dashboardtest
