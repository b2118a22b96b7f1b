package httpapi

import (
	"encoding/json"
	"errors"
	"strings"

	"timd/internal/im"
)

// accountFields are the body fields whose values must be strings; a wrong
// type there is 60015 (spec §1.3) rather than a JSON error.
var accountFields = map[string]bool{
	"To_Account": true, "UserID": true, "From_Account": true, "Accounts": true, "Identifier": true,
}

// decode parses body into v. A body that is not a JSON object is the
// family's bad-JSON error; a non-string account field is 60015.
func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if accountFields[lastField(te.Field)] {
				return im.Errorf(im.CodeAccountNotStr, "%s must be a string", lastField(te.Field))
			}
			return im.KindErrorf(im.KindBadJSON, "field %s has the wrong type: want %s", te.Field, te.Type)
		}
		return im.KindErrorf(im.KindBadJSON, "request body is not valid JSON")
	}
	return nil
}

// lastField returns the last element of a dotted JSON field path.
func lastField(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}
