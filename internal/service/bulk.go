package service

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"timd/internal/im"
)

// The bulk import file (timd import): JSON Lines, one account per line,
//
//	{"UserID":"u1","Nick":"Ann","FaceUrl":"https://…","Attrs":{"city":"sz"},"Tags":["vip","beta"]}
//
// UserID is required; the other keys are optional. A line is validated as
// account_import, set_attr and add_tag validate their items: a UserID of
// 1 to 32 bytes (70402), attribute names defined in the app's schema and
// values of 1 to 50 bytes (90033), tags of 1 to 50 bytes of UTF-8 (90040,
// 90020) and at most 100 per line (90032). Unknown keys, a line that is
// not one JSON object, or values of the wrong JSON type are 90001. Blank
// lines are skipped.

// ImportLine is the wire form of one line.
type ImportLine struct {
	UserID  string            `json:"UserID"`
	Nick    string            `json:"Nick"`
	FaceURL string            `json:"FaceUrl"`
	Attrs   map[string]string `json:"Attrs"`
	Tags    []string          `json:"Tags"`
}

// DecodeImportLine decodes and validates one line against the app's
// schema. Errors are *im.Error with the codes above.
func DecodeImportLine(line []byte, schema *im.AttrSchema) (im.BulkAccount, error) {
	if f, ok := scanImportLine(line); ok {
		return f.account(schema)
	}
	return decodeImportLineJSON(line, schema)
}

// decodeImportLineJSON is DecodeImportLine through encoding/json: for every
// line scanImportLine does not take, and for the errors.
func decodeImportLineJSON(line []byte, schema *im.AttrSchema) (im.BulkAccount, error) {
	var l ImportLine
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return im.BulkAccount{}, im.Errorf(im.CodePushJSON, "not an account object: %s", jsonProblem(err))
	}
	if dec.More() {
		return im.BulkAccount{}, im.Errorf(im.CodePushJSON, "more than one JSON value on the line")
	}
	return l.Account(schema)
}

// jsonProblem describes a decoding error in the file's terms.
func jsonProblem(err error) string {
	if te, ok := err.(*json.UnmarshalTypeError); ok {
		return "field " + te.Field + " has the wrong type"
	}
	return err.Error()
}

// Account validates l and returns it as a BulkAccount.
func (l *ImportLine) Account(schema *im.AttrSchema) (im.BulkAccount, error) {
	f := scannedLine{userID: l.UserID, nick: l.Nick, faceURL: l.FaceURL, tags: l.Tags}
	for name, v := range l.Attrs {
		f.attrs = append(f.attrs, [2]string{name, v})
	}
	return f.account(schema)
}

// account validates f and returns it as a BulkAccount.
func (f *scannedLine) account(schema *im.AttrSchema) (im.BulkAccount, error) {
	a := im.BulkAccount{UserID: f.userID, Nick: f.nick, FaceURL: f.faceURL}
	if err := im.ValidUserID(f.userID); err != nil {
		return a, im.Errorf(im.CodeAccountBadParam, "%v", err)
	}
	// Of several bad attributes, the first by name is reported, so that
	// the error does not depend on the order of a map or of the line.
	var bad *im.Error
	badName := ""
	for _, kv := range f.attrs {
		name, v := kv[0], kv[1]
		var err *im.Error
		slot := schema.Slot(name)
		switch {
		case slot < 0:
			err = im.Errorf(im.CodeAttrInvalid, "attribute %q is not defined", name)
		case v == "" || len(v) > im.MaxAttrValueLen:
			err = im.Errorf(im.CodeAttrInvalid, "value of attribute %q must be 1 to %d bytes", name, im.MaxAttrValueLen)
		default:
			a.Attrs[slot] = v
		}
		if err != nil && (bad == nil || name < badName) {
			bad, badName = err, name
		}
	}
	if bad != nil {
		return a, bad
	}
	if len(f.tags) > im.MaxTagsPerUser {
		return a, im.Errorf(im.CodeTooManyTags, "%d tags, at most %d per account", len(f.tags), im.MaxTagsPerUser)
	}
	for _, t := range f.tags {
		if t == "" {
			return a, im.Errorf(im.CodeEmptyTag, "empty tag")
		}
		if len(t) > im.MaxTagLen || !utf8.ValidString(t) {
			return a, im.Errorf(im.CodeTagTooLong, "tag %.60q is over %d bytes or not UTF-8", t, im.MaxTagLen)
		}
	}
	a.Tags = f.tags
	return a, nil
}
