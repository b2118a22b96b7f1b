package pushvendor

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"
)

// OfflinePushInfo is the part of Tencent's OfflinePushInfo the vendors
// use. Keys for other vendors (HuaWei, XiaoMi, OPPO, VIVO, ...) stay in
// the stored task verbatim and are ignored here.
type OfflinePushInfo struct {
	PushFlag int         `json:"PushFlag"` // 1: no vendor notification
	Title    string      `json:"Title"`
	Desc     string      `json:"Desc"`
	Ext      string      `json:"Ext"`
	Sound    string      `json:"Sound"`
	Apns     ApnsInfo    `json:"ApnsInfo"`
	Android  AndroidInfo `json:"AndroidInfo"`
}

// ParseOfflinePushInfo decodes a stored OfflinePushInfo. An absent one
// (nil, empty or null) is the zero value. A field of the wrong type is an
// error; unknown keys are ignored.
func ParseOfflinePushInfo(raw json.RawMessage) (OfflinePushInfo, error) {
	var o OfflinePushInfo
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return o, nil
	}
	if raw[0] != '{' {
		return OfflinePushInfo{}, errors.New("OfflinePushInfo: want a JSON object")
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return OfflinePushInfo{}, errors.New("OfflinePushInfo: a field has the wrong type")
	}
	return o, nil
}

// Offline reports whether the push asks for vendor notifications.
func (o OfflinePushInfo) Offline() bool { return o.PushFlag != 1 }

// Notification is the vendors' notification for task taskID of app,
// which expires at expires (zero: no lifetime given).
func (o OfflinePushInfo) Notification(app uint64, taskID string, expires time.Time) Notification {
	return Notification{
		App: app, TaskID: taskID, Title: o.Title, Desc: o.Desc, Ext: o.Ext, Sound: o.Sound,
		Expires: expires, Priority: PriorityHigh, Apns: o.Apns, Android: o.Android,
	}
}
