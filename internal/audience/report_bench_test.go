package audience

import (
	"slices"
	"strings"
	"testing"
)

// BenchmarkTopTags answers tag_histogram's question (the 20 most carried
// tags) over the 1M-account bench index; the baseline in the same binary
// counts every tag and sorts them all.
func BenchmarkTopTags(b *testing.B) {
	x := benchIndex(1_000_000)
	b.Run("heap20", func(b *testing.B) {
		for b.Loop() {
			if top, _ := x.TopTags(1, 20); len(top) != 20 {
				b.Fatal(len(top))
			}
		}
	})
	b.Run("baseline-sort-all", func(b *testing.B) {
		for b.Loop() {
			a := x.app(1, false)
			a.mu.RLock()
			all := make([]TagCount, 0, len(a.tags))
			for t, bm := range a.tags {
				all = append(all, TagCount{t, bm.GetCardinality()})
			}
			a.mu.RUnlock()
			slices.SortFunc(all, func(p, q TagCount) int {
				if p.Count != q.Count {
					return int(q.Count) - int(p.Count)
				}
				return strings.Compare(p.Tag, q.Tag)
			})
			_ = all[:20]
		}
	})
}

// BenchmarkPage reads account_list's largest page (1000) from the middle
// of the 1M-account bench index.
func BenchmarkPage(b *testing.B) {
	x := benchIndex(1_000_000)
	for b.Loop() {
		if page, _ := x.Page(1, 500_000, 1000); len(page) != 1000 {
			b.Fatal(len(page))
		}
	}
}
