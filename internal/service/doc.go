// Package service holds timd's business rules: authentication of admins and
// users, accounts, attributes and tags, and pushes. It validates requests,
// enforces limits and Tencent's compatibility quirks, and calls the store
// interfaces of package im. It never imports a concrete store.
package service
