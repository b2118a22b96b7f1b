package httpapi

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"timd/internal/im"
	"timd/internal/service"
)

// This file decodes and validates the push bodies (push, batch, im_push
// and a scheduled task's Content) into service.PushRequest, at the edge.

// msgTypes are the element types of docs/api.md, "Sending".
var msgTypes = map[string]bool{
	"TIMTextElem": true, "TIMLocationElem": true, "TIMFaceElem": true, "TIMCustomElem": true,
	"TIMSoundElem": true, "TIMImageElem": true, "TIMFileElem": true, "TIMVideoFileElem": true,
}

// parsePushBody decodes a push request body of kind (docs/api.md, "Sending",
// §10). It checks shape only, without I/O. Errors:
//
//   - 90001 the body is not a JSON object; a field has the wrong type;
//     OnlineOnlyFlag is not 0 or 1; OfflinePushInfo is not an object; a
//     push has neither MsgBody nor OfflinePushInfo; a batch has no
//     OfflinePushInfo or no To_Account;
//   - 60015 From_Account or a To_Account item is not a string;
//   - 90005 MsgRandom is missing or not an integer from 0 to 4294967295;
//   - 90007 MsgBody is not an array; 90002 it is empty, malformed, or
//     missing from im_push; 90010 an element is invalid (unknown MsgType,
//     MsgContent not an object, a required key missing or mistyped, more
//     than one TIMCustomElem);
//   - 90026 MsgLifeTime is not an integer from 0 to 604800;
//   - 90057 DataId is longer than 64 bytes;
//   - 90018 a batch has more than 500 recipients.
//
// Push and im_push bodies and every Condition are closed: an unknown key
// is 90001, as is a Condition naming no non-empty clause; the legacy
// Condition has no TagsNot, so a TagsNot in an im_push is 90001 too.
// Unknown keys of a batch body are ignored.
func parsePushBody(body []byte, kind im.PushKind) (*service.PushRequest, error) {
	return parsePush(body, kind, true)
}

func parsePush(body []byte, kind im.PushKind, randomRequired bool) (*service.PushRequest, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return nil, im.KindErrorf(im.KindBadJSON, "request body is not a JSON object")
	}
	if kind != im.PushBatch {
		if err := closedBody(fields); err != nil {
			return nil, err
		}
	}
	req := &service.PushRequest{Kind: kind, Size: len(body)}
	steps := []func(map[string]json.RawMessage, *service.PushRequest) error{
		parseRandom, parseFrom, parseCondition, parseTo, parseMsgBody, parseOffline,
		parseFlags, parseDataID,
	}
	for _, step := range steps {
		if err := step(fields, req); err != nil {
			if !randomRequired && im.CodeOf(err) == im.CodeMsgRandom && !present(fields, "MsgRandom") {
				continue
			}
			return nil, err
		}
	}
	return req, checkKind(req)
}

// present reports whether key is in fields with a non-null value.
func present(fields map[string]json.RawMessage, key string) bool {
	v, ok := fields[key]
	return ok && !bytes.Equal(bytes.TrimSpace(v), []byte("null"))
}

func parseRandom(f map[string]json.RawMessage, r *service.PushRequest) error {
	if !present(f, "MsgRandom") {
		return im.Errorf(im.CodeMsgRandom, "MsgRandom is required")
	}
	n, err := strconv.ParseUint(string(bytes.TrimSpace(f["MsgRandom"])), 10, 32)
	if err != nil {
		return im.Errorf(im.CodeMsgRandom, "MsgRandom must be an integer from 0 to 4294967295")
	}
	r.MsgRandom, r.HasRandom = uint32(n), true
	return nil
}

func parseFrom(f map[string]json.RawMessage, r *service.PushRequest) error {
	if !present(f, "From_Account") {
		return nil
	}
	if err := json.Unmarshal(f["From_Account"], &r.From); err != nil {
		return im.Errorf(im.CodeAccountNotStr, "From_Account must be a string")
	}
	if len(r.From) > service.MaxFromLen {
		return im.KindErrorf(im.KindBadParam, "From_Account longer than %d bytes", service.MaxFromLen)
	}
	return nil
}

// pushKeys are the top-level keys of a push and an im_push body. These
// bodies are closed: without a Condition they reach everyone, so a
// misspelt "Condition", or a To_Account meant for batch, must not be
// ignored. (A batch body stays open: its audience is its To_Account.)
var pushKeys = []string{"From_Account", "MsgRandom", "Condition", "MsgBody", "OfflinePushInfo",
	"OnlineOnlyFlag", "MsgLifeTime", "DataId"}

// closedBody refuses (90001) a push or im_push body key outside pushKeys.
func closedBody(fields map[string]json.RawMessage) error {
	if k, ok := firstUnknown(fields, pushKeys); ok {
		return im.KindErrorf(im.KindBadJSON,
			"%s is not a field of a push request; expected %s (an absent Condition pushes to everyone)",
			keyName(k), strings.Join(pushKeys, ", "))
	}
	return nil
}

// keyName shows an object key in a message; the empty key as "".
func keyName(k string) string {
	if k == "" {
		return `""`
	}
	return k
}

// firstUnknown returns the least key of fields that is not in keys (the
// empty key included), and whether there is one.
func firstUnknown(fields map[string]json.RawMessage, keys []string) (string, bool) {
	var first string
	found := false
	for k := range fields {
		if !slices.Contains(keys, k) && (!found || k < first) {
			first, found = k, true
		}
	}
	return first, found
}

// conditionKeys are the keys of a Condition (docs/compatibility.md, "Push conditions"); the legacy
// im_push Condition has no TagsNot.
var (
	conditionKeys       = []string{"TagsAnd", "TagsOr", "TagsNot", "AttrsAnd", "AttrsOr"}
	legacyConditionKeys = []string{"TagsAnd", "TagsOr", "AttrsAnd", "AttrsOr"}
)

// parseCondition decodes a Condition. Absent or null means everyone. A
// Condition is closed: a key other than the documented ones (compared
// exactly) is 90001, and so is a Condition that names no non-empty
// clause, because ignoring either would push to everyone.
func parseCondition(f map[string]json.RawMessage, r *service.PushRequest) error {
	if r.Kind == im.PushBatch || !present(f, "Condition") {
		return nil
	}
	keys := conditionKeys
	if r.Kind == im.PushLegacy {
		keys = legacyConditionKeys
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(f["Condition"], &fields); err != nil || fields == nil {
		return im.KindErrorf(im.KindBadJSON, "Condition must be a JSON object")
	}
	if err := closedObject("Condition", fields, keys); err != nil {
		return err
	}
	var c im.Condition
	for _, clause := range []struct {
		key string
		dst any
	}{{"TagsAnd", &c.TagsAnd}, {"TagsOr", &c.TagsOr}, {"TagsNot", &c.TagsNot}, {"AttrsAnd", &c.AttrsAnd}, {"AttrsOr", &c.AttrsOr}} {
		if !present(fields, clause.key) {
			continue
		}
		if err := json.Unmarshal(fields[clause.key], clause.dst); err != nil {
			want := "an array of strings"
			if strings.HasPrefix(clause.key, "Attrs") {
				want = "an object of string values"
			}
			return im.KindErrorf(im.KindBadJSON, "Condition.%s must be %s", clause.key, want)
		}
	}
	if c.Empty() {
		return im.KindErrorf(im.KindBadParam,
			"Condition names no clause: give a non-empty %s, or leave Condition out to push to everyone",
			strings.Join(keys, ", "))
	}
	r.Condition = &c
	return nil
}

// closedObject refuses (90001) a key of fields that is not one of keys.
// Keys compare exactly.
func closedObject(name string, fields map[string]json.RawMessage, keys []string) error {
	if k, ok := firstUnknown(fields, keys); ok {
		return im.KindErrorf(im.KindBadJSON, "%s.%s is not a field of %s; expected %s",
			name, keyName(k), name, strings.Join(keys, ", "))
	}
	return nil
}

func parseTo(f map[string]json.RawMessage, r *service.PushRequest) error {
	if r.Kind != im.PushBatch {
		return nil
	}
	if !present(f, "To_Account") {
		return im.KindErrorf(im.KindBadParam, "To_Account is required")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(f["To_Account"], &items); err != nil {
		return im.KindErrorf(im.KindBadParam, "To_Account must be an array of account IDs")
	}
	if len(items) == 0 {
		return im.KindErrorf(im.KindBadParam, "To_Account is empty")
	}
	if len(items) > im.MaxBatchRecipient {
		return im.KindErrorf(im.KindTooMany, "at most %d recipients per batch, got %d", im.MaxBatchRecipient, len(items))
	}
	r.To = make([]string, len(items))
	for i, it := range items {
		if err := json.Unmarshal(it, &r.To[i]); err != nil || bytes.Equal(bytes.TrimSpace(it), []byte("null")) {
			return im.Errorf(im.CodeAccountNotStr, "To_Account[%d] must be a JSON string", i)
		}
	}
	return nil
}

func parseMsgBody(f map[string]json.RawMessage, r *service.PushRequest) error {
	if !present(f, "MsgBody") {
		if r.Kind == im.PushLegacy {
			return im.Errorf(im.CodeMsgBodyFormat, "MsgBody is required")
		}
		return nil
	}
	body, err := checkMsgBody(f["MsgBody"])
	r.MsgBody = body
	return err
}

// checkMsgBody validates a TIMMsgElement array and returns it compacted.
func checkMsgBody(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return nil, im.Errorf(im.CodeMsgBodyNotArray, "MsgBody must be an array")
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil || len(elems) == 0 {
		return nil, im.Errorf(im.CodeMsgBodyFormat, "MsgBody must be a non-empty array of message elements")
	}
	custom := 0
	for i, e := range elems {
		typ, err := checkElem(e)
		if err != nil {
			return nil, im.Errorf(im.CodeMsgElem, "MsgBody[%d]: %s", i, err.Info)
		}
		if typ == "TIMCustomElem" {
			if custom++; custom > 1 {
				return nil, im.Errorf(im.CodeMsgElem, "MsgBody[%d]: at most one TIMCustomElem per message", i)
			}
		}
	}
	var out bytes.Buffer
	if err := json.Compact(&out, raw); err != nil {
		return nil, im.Errorf(im.CodeMsgBodyFormat, "MsgBody is not valid JSON")
	}
	return out.Bytes(), nil
}

// elemKeys are the content keys whose JSON type each element type fixes:
// 's' string, 'n' number; required ones are upper case.
var elemKeys = map[string]map[string]byte{
	"TIMTextElem":     {"Text": 'S'},
	"TIMLocationElem": {"Desc": 's', "Latitude": 'N', "Longitude": 'N'},
	"TIMFaceElem":     {"Index": 'N', "Data": 's'},
	"TIMCustomElem":   {"Data": 's', "Desc": 's', "Ext": 's', "Sound": 's'},
	"TIMSoundElem":    {"Url": 's', "UUID": 's', "Size": 'n', "Second": 'n', "Download_Flag": 'n'},
	"TIMImageElem":    {"UUID": 's', "ImageFormat": 'n'},
	"TIMFileElem":     {"Url": 's', "UUID": 's', "FileSize": 'n', "FileName": 's', "Download_Flag": 'n'},
	"TIMVideoFileElem": {"VideoUrl": 's', "VideoUUID": 's', "VideoSize": 'n', "VideoSecond": 'n',
		"VideoFormat": 's', "VideoDownloadFlag": 'n', "ThumbUrl": 's', "ThumbUUID": 's', "ThumbSize": 'n',
		"ThumbWidth": 'n', "ThumbHeight": 'n', "ThumbFormat": 's', "ThumbDownloadFlag": 'n'},
}

// checkElem validates one {"MsgType","MsgContent"} element.
func checkElem(raw json.RawMessage) (string, *im.Error) {
	var e map[string]json.RawMessage
	if err := json.Unmarshal(raw, &e); err != nil || e == nil {
		return "", im.Errorf(im.CodeMsgElem, "element must be an object")
	}
	var typ string
	if err := json.Unmarshal(e["MsgType"], &typ); err != nil || !msgTypes[typ] {
		return "", im.Errorf(im.CodeMsgElem, "MsgType must be one of the TIM*Elem types")
	}
	var content map[string]json.RawMessage
	if err := json.Unmarshal(e["MsgContent"], &content); err != nil || content == nil {
		return typ, im.Errorf(im.CodeMsgElem, "%s: MsgContent must be an object", typ)
	}
	for key, kind := range elemKeys[typ] {
		v, ok := content[key]
		if !ok {
			if kind == 'S' || kind == 'N' {
				return typ, im.Errorf(im.CodeMsgElem, "%s: MsgContent.%s is required", typ, key)
			}
			continue
		}
		if !hasJSONKind(v, kind) {
			return typ, im.Errorf(im.CodeMsgElem, "%s: MsgContent.%s has the wrong type", typ, key)
		}
	}
	return typ, nil
}

// hasJSONKind reports whether v is a JSON string ('s', 'S') or number ('n', 'N').
func hasJSONKind(v json.RawMessage, kind byte) bool {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return false
	}
	switch kind {
	case 's', 'S':
		var s string
		return json.Unmarshal(v, &s) == nil && v[0] == '"'
	default:
		var n json.Number
		return v[0] != '"' && json.Unmarshal(v, &n) == nil
	}
}

func parseOffline(f map[string]json.RawMessage, r *service.PushRequest) error {
	if !present(f, "OfflinePushInfo") {
		return nil
	}
	raw := bytes.TrimSpace(f["OfflinePushInfo"])
	var obj map[string]json.RawMessage
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &obj) != nil {
		return im.KindErrorf(im.KindBadJSON, "OfflinePushInfo must be an object")
	}
	var out bytes.Buffer
	if err := json.Compact(&out, raw); err != nil {
		return im.KindErrorf(im.KindBadJSON, "OfflinePushInfo is not valid JSON")
	}
	r.Offline = out.Bytes()
	return nil
}

func parseFlags(f map[string]json.RawMessage, r *service.PushRequest) error {
	if r.Kind != im.PushLegacy && present(f, "OnlineOnlyFlag") {
		flag, err := strconv.ParseUint(string(bytes.TrimSpace(f["OnlineOnlyFlag"])), 10, 8)
		if err != nil || flag > 1 {
			return im.KindErrorf(im.KindBadParam, "OnlineOnlyFlag must be 0 or 1")
		}
		r.OnlineOnly = flag == 1
	}
	if present(f, "MsgLifeTime") {
		n, err := strconv.ParseInt(string(bytes.TrimSpace(f["MsgLifeTime"])), 10, 64)
		if err != nil || n < 0 || n > im.MaxMsgLifeTime {
			return im.Errorf(im.CodeMsgLifeTime, "MsgLifeTime must be an integer from 0 to %d seconds", im.MaxMsgLifeTime)
		}
		r.MsgLifeTime = n
	}
	return nil
}

func parseDataID(f map[string]json.RawMessage, r *service.PushRequest) error {
	if !present(f, "DataId") {
		return nil
	}
	if err := json.Unmarshal(f["DataId"], &r.DataID); err != nil {
		return im.KindErrorf(im.KindBadJSON, "DataId must be a string")
	}
	if len(r.DataID) > im.MaxDataIDLen {
		return im.Errorf(im.CodeDataIDTooLong, "DataId longer than %d bytes", im.MaxDataIDLen)
	}
	return nil
}

// checkKind applies what each command requires of the content.
func checkKind(r *service.PushRequest) error {
	switch r.Kind {
	case im.PushCondition:
		if r.MsgBody == nil && r.Offline == nil {
			return im.KindErrorf(im.KindBadParam, "MsgBody or OfflinePushInfo is required")
		}
	case im.PushBatch:
		if r.Offline == nil {
			return im.KindErrorf(im.KindBadParam, "OfflinePushInfo is required")
		}
	}
	return nil
}
