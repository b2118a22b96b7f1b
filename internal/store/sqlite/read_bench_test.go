package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"timd/internal/im"
)

// BenchmarkReads compares, for a get_tag-sized request (100 random ids
// among 20,000 accounts with 2 attributes and 2 tags, all folded), the
// whole-account Profiles read with the narrow ReadTags and ReadAttrs.
// One iteration is one request.
func BenchmarkReads(b *testing.B) {
	ctx := context.Background()
	s, err := open(ctx, b.TempDir(), nil, defaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const n = 20_000
	ids := make([]string, n)
	for lo := 0; lo < n; lo += 1000 {
		in := make([]im.AccountInput, 1000)
		var edits []im.Edit
		for i := range in {
			ids[lo+i] = fmt.Sprintf("user%07d", lo+i)
			in[i].UserID = ids[lo+i]
			edits = append(edits,
				im.Edit{Account: ids[lo+i], Op: im.OpSetAttrs, Attrs: im.AttrValues{"f", "Berlin"}},
				im.Edit{Account: ids[lo+i], Op: im.OpAddTags, Tags: []string{"vip", fmt.Sprint("g", i%10)}})
		}
		if _, err := s.ImportAccounts(ctx, benchApp, in); err != nil {
			b.Fatal(err)
		}
		if _, err := s.ApplyEdits(ctx, benchApp, edits, im.EditLimits{}); err != nil {
			b.Fatal(err)
		}
	}
	waitOverlayEmpty(b, s)
	rng := rand.New(rand.NewPCG(1, 2))
	req := func() []string {
		r := make([]string, 100)
		for i := range r {
			r[i] = ids[rng.IntN(n)]
		}
		return r
	}
	b.Run("Profiles", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Profiles(ctx, benchApp, req()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ReadTags", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.ReadTags(ctx, benchApp, req()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ReadAttrs", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.ReadAttrs(ctx, benchApp, req()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
