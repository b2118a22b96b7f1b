package httpapi

// Commands returns every "service/command" of the routes table, in table
// order.
func Commands() []string {
	out := make([]string, len(routes))
	for i, r := range routes {
		out[i] = routeKey(r.service, r.command)
	}
	return out
}
