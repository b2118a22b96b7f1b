package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"timd/internal/im"
)

// accountFields are the body fields whose values must be strings; a wrong
// type there is 60015 (docs/api.md, "Common to every command") rather than a JSON error.
var accountFields = map[string]bool{
	"To_Account": true, "UserID": true, "From_Account": true, "Accounts": true, "Identifier": true,
}

// closedKeys is implemented by request objects whose unknown keys are
// refused (the family's bad-JSON code) instead of ignored: objects where a
// misspelt key would widen what the request does, such as a Condition
// whose misspelt clause would otherwise push to everyone.
// docs/compatibility.md lists them.
type closedKeys interface{ closedKeys() }

var closedType = reflect.TypeFor[closedKeys]()

// decode parses body into v, a pointer to a request struct, in two passes:
// first it checks the JSON against v's type, then it unmarshals. The check
// names the API's field as a JSON path (UserAttrs[0].Attrs) and the JSON
// type expected (object, array, string, number, integer, boolean), never
// a Go type; it refuses unknown keys of closedKeys objects. Errors: the
// family's bad-JSON code for a body that is not JSON, a value of the wrong
// JSON type or an unknown key of a closed object; 60015 for an account
// field that is not a string. JSON null is accepted anywhere and leaves
// the zero value; handlers check what they require.
func decode(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return im.KindErrorf(im.KindBadJSON, "request body is not valid JSON")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return im.KindErrorf(im.KindBadJSON, "request body is not valid JSON: data after the top-level value")
	}
	if _, ok := doc.(map[string]any); !ok {
		return im.KindErrorf(im.KindBadJSON, "request body must be a JSON object, got %s", jsonKind(doc))
	}
	if err := check(reflect.TypeOf(v).Elem(), doc, "", ""); err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		// check mirrors encoding/json, so this is not expected; still
		// answer in the API's words.
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return im.KindErrorf(im.KindBadJSON, "%s must be a JSON %s, got %s", te.Field, wantKind(te.Type), te.Value)
		}
		return im.KindErrorf(im.KindBadJSON, "request body is not valid JSON")
	}
	return nil
}

// check verifies that the decoded JSON value doc fits Go type t. path is
// doc's JSON path, field the name of the object key doc is under (for the
// 60015 rule).
func check(t reflect.Type, doc any, path, field string) error {
	if doc == nil {
		return nil // null leaves the zero value
	}
	if t == rawType || (t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(unmarshalerType)) {
		return nil // decoded by its own rules (json.RawMessage: anything)
	}
	switch t.Kind() {
	case reflect.Pointer:
		return check(t.Elem(), doc, path, field)
	case reflect.Interface:
		return nil
	case reflect.Struct:
		obj, ok := doc.(map[string]any)
		if !ok {
			return wrongType(path, field, t, doc)
		}
		return checkObject(t, obj, path)
	case reflect.Map:
		obj, ok := doc.(map[string]any)
		if !ok {
			return wrongType(path, field, t, doc)
		}
		if t.Key().Kind() != reflect.String {
			return nil // left to encoding/json
		}
		for _, k := range sortedKeys(obj) {
			if err := check(t.Elem(), obj[k], join(path, k), field); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			break // []byte is a base64 string in encoding/json
		}
		arr, ok := doc.([]any)
		if !ok {
			return wrongType(path, field, t, doc)
		}
		for i, item := range arr {
			if err := check(t.Elem(), item, path+"["+strconv.Itoa(i)+"]", field); err != nil {
				return err
			}
		}
		return nil
	}
	return checkScalar(t, doc, path, field)
}

// checkScalar checks a string, boolean or number value.
func checkScalar(t reflect.Type, doc any, path, field string) error {
	switch t.Kind() {
	case reflect.String:
		if _, ok := doc.(string); ok {
			return nil
		}
	case reflect.Slice: // []byte
		if _, ok := doc.(string); ok {
			return nil
		}
	case reflect.Bool:
		if _, ok := doc.(bool); ok {
			return nil
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n, ok := doc.(json.Number); ok {
			if _, err := strconv.ParseInt(n.String(), 10, t.Bits()); err == nil {
				return nil
			}
			return outOfRange(path, t, n)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n, ok := doc.(json.Number); ok {
			if _, err := strconv.ParseUint(n.String(), 10, t.Bits()); err == nil {
				return nil
			}
			return outOfRange(path, t, n)
		}
	case reflect.Float32, reflect.Float64:
		if n, ok := doc.(json.Number); ok {
			if f, err := n.Float64(); err == nil && !math.IsInf(f, 0) {
				return nil
			}
			return outOfRange(path, t, n)
		}
	default:
		return nil // a type no request uses; left to encoding/json
	}
	return wrongType(path, field, t, doc)
}

// checkObject checks obj against struct t: known keys by their type,
// unknown keys refused when t is closed.
func checkObject(t reflect.Type, obj map[string]any, path string) error {
	info := structInfoOf(t)
	for _, k := range sortedKeys(obj) {
		f, ok := info.field(k)
		if info.closed && ok && f.name != k {
			ok = false // closed objects match keys exactly
		}
		if !ok {
			if info.closed {
				return im.KindErrorf(im.KindBadJSON, "%s is not a field of %s; expected %s",
					join(path, keyName(k)), pathName(path), strings.Join(info.names, ", "))
			}
			continue
		}
		if err := check(f.typ, obj[k], join(path, f.name), f.name); err != nil {
			return err
		}
	}
	return nil
}

// fieldInfo is one JSON-visible struct field.
type fieldInfo struct {
	name string
	typ  reflect.Type
}

// structInfo is what check needs of a struct type, cached per type.
type structInfo struct {
	byName map[string]fieldInfo
	names  []string // in declaration order, for messages
	closed bool
}

// field finds key as encoding/json does: the exact name, else a
// case-insensitive match.
func (s *structInfo) field(key string) (fieldInfo, bool) {
	if f, ok := s.byName[key]; ok {
		return f, true
	}
	for _, name := range s.names {
		if strings.EqualFold(name, key) {
			return s.byName[name], true
		}
	}
	return fieldInfo{}, false
}

var structInfos sync.Map // reflect.Type → *structInfo

func structInfoOf(t reflect.Type) *structInfo {
	if v, ok := structInfos.Load(t); ok {
		return v.(*structInfo)
	}
	s := &structInfo{byName: map[string]fieldInfo{},
		closed: t.Implements(closedType) || reflect.PointerTo(t).Implements(closedType)}
	addFields(s, t)
	structInfos.Store(t, s)
	return s
}

// addFields records t's JSON fields, descending into embedded structs.
func addFields(s *structInfo, t reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			addFields(s, f.Type)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, dup := s.byName[name]; !dup {
			s.byName[name] = fieldInfo{name: name, typ: f.Type}
			s.names = append(s.names, name)
		}
	}
}

var (
	rawType         = reflect.TypeFor[json.RawMessage]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

// wrongType is the error for doc at path not fitting t: 60015 for an
// account field, else the family's bad-JSON error.
func wrongType(path, field string, t reflect.Type, doc any) error {
	if accountFields[field] {
		return im.Errorf(im.CodeAccountNotStr, "%s must be a JSON %s, got %s", path, wantKind(t), jsonKind(doc))
	}
	return im.KindErrorf(im.KindBadJSON, "%s must be a JSON %s, got %s", pathName(path), wantKind(t), jsonKind(doc))
}

func outOfRange(path string, t reflect.Type, n json.Number) error {
	return im.KindErrorf(im.KindBadJSON, "%s must be %s, got %s", pathName(path), rangeOf(t), n)
}

// rangeOf describes the numbers an integer type holds.
func rangeOf(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		return "a finite number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf("an integer from 0 to %d", uint64(1)<<t.Bits()-1)
	}
	return fmt.Sprintf("an integer from %d to %d", -(int64(1) << (t.Bits() - 1)), int64(1)<<(t.Bits()-1)-1)
}

// wantKind names the JSON type that Go type t decodes from.
func wantKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "string"
		}
		return "array"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	}
	return "value"
}

// jsonKind names the JSON type of a decoded value.
func jsonKind(doc any) string {
	switch doc.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	}
	return "value"
}

// join appends an object key to a JSON path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// pathName is path, or "the request body" for the top level.
func pathName(path string) string {
	if path == "" {
		return "the request body"
	}
	return path
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
