package crashtest

import (
	"encoding/json"
	"fmt"
	"slices"
)

// writeRequest returns the command and body that apply ops[i] to ids[i];
// every op has the same Kind.
func writeRequest(kind OpKind, ids []string, ops []Op) (string, []byte) {
	var cmd string
	var body any
	switch kind {
	case OpSetAttr:
		items := make([]map[string]any, len(ids))
		for i, id := range ids {
			attrs := map[string]string{}
			for slot, v := range ops[i].Attrs {
				if v != 0 {
					attrs[attrNames[slot]] = attrValue(slot, v)
				}
			}
			items[i] = map[string]any{"To_Account": id, "Attrs": attrs}
		}
		cmd, body = "timpush/set_attr", map[string]any{"UserAttrs": items}
	case OpRemoveAttr:
		items := make([]map[string]any, len(ids))
		for i, id := range ids {
			var names []string
			for slot, v := range ops[i].Attrs {
				if v != 0 {
					names = append(names, attrNames[slot])
				}
			}
			items[i] = map[string]any{"To_Account": id, "Attrs": names}
		}
		cmd, body = "timpush/remove_attr", map[string]any{"UserAttrs": items}
	case OpAddTag, OpReplaceTag, OpRemoveTag:
		items := make([]map[string]any, len(ids))
		for i, id := range ids {
			items[i] = map[string]any{"To_Account": id, "Tags": tagNames(ops[i].Tags)}
		}
		m := map[string]any{"UserTags": items}
		cmd = "timpush/add_tag"
		switch kind {
		case OpReplaceTag:
			m["Replace"] = 1
		case OpRemoveTag:
			cmd = "timpush/remove_tag"
		}
		body = m
	case OpClearTags:
		cmd, body = "timpush/clear_all_tags", map[string]any{"To_Account": ids}
	}
	b, _ := json.Marshal(body)
	return cmd, b
}

func tagNames(mask uint16) []string {
	var out []string
	for i := range numTags {
		if mask&(1<<i) != 0 {
			out = append(out, tagName(i))
		}
	}
	return out
}

// writeAnswer is the answer of a write command.
type writeAnswer struct {
	ErrorCode int
	ErrorInfo string
	ErrorList []struct {
		Account   string `json:"To_Account"`
		ErrorCode int
	}
}

// failed returns the accounts the answer lists as failed.
func (a *writeAnswer) failed() map[string]int {
	if len(a.ErrorList) == 0 {
		return nil
	}
	m := make(map[string]int, len(a.ErrorList))
	for _, e := range a.ErrorList {
		m[e.Account] = e.ErrorCode
	}
	return m
}

// attrsAnswer is get_attr's answer.
type attrsAnswer struct {
	UserAttrs []struct {
		Account string `json:"To_Account"`
		Attrs   map[string]string
	}
	ErrorList json.RawMessage
}

// tagsAnswer is get_tag's answer.
type tagsAnswer struct {
	UserTags []struct {
		Account string `json:"To_Account"`
		Tags    []string
	}
	ErrorList json.RawMessage
}

// attrSlot returns the slot of attribute name, or -1.
func attrSlot(name string) int {
	return slices.Index(attrNames[:], name)
}

// tagBit returns the bit of tag t, or -1.
func tagBit(t string) int {
	for i := range numTags {
		if tagName(i) == t {
			return i
		}
	}
	return -1
}

// parseAttrs returns the attribute part of a state read with get_attr.
func parseAttrs(attrs map[string]string) ([numAttrs]uint8, error) {
	var out [numAttrs]uint8
	for name, val := range attrs {
		slot := attrSlot(name)
		if slot < 0 {
			return out, fmt.Errorf("unknown attribute %q=%q", name, val)
		}
		v := valueOf(slot, val)
		if v == 0 {
			return out, fmt.Errorf("attribute %s has a value no writer sent: %q", name, val)
		}
		out[slot] = v
	}
	return out, nil
}

// parseTags returns the tag part of a state read with get_tag.
func parseTags(tags []string) (uint16, error) {
	var out uint16
	for _, t := range tags {
		i := tagBit(t)
		if i < 0 {
			return 0, fmt.Errorf("tag no writer sent: %q", t)
		}
		if out&(1<<i) != 0 {
			return 0, fmt.Errorf("tag %s listed twice: %q", t, tags)
		}
		out |= 1 << i
	}
	return out, nil
}
