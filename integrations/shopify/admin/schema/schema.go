// Package schema holds the Shopify Admin GraphQL schema (API version
// 2025-01) that the generated client in the admin package and the fake
// Shopify in shopifyfake are checked against. The SDL keeps every type,
// field, argument, enum value and directive of Shopify's published schema;
// descriptions are kept only where genqlient prints them (see prune).
package schema

import _ "embed"

// SDL is the schema's text.
//
//go:embed admin-2025-01.graphql
var SDL string
