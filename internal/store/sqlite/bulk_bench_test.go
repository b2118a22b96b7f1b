//go:build unix

package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"timd/internal/im"
)

// BenchmarkBulkLoad loads new accounts with two attributes and two tags
// in batches of 20,000; accounts/s is the figure.
func BenchmarkBulkLoad(b *testing.B) {
	s := bulkStore(b)
	const batch = 20000
	in := make([]im.BulkAccount, batch)
	n := 0
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		for i := range in {
			in[i] = im.BulkAccount{UserID: fmt.Sprintf("user%09d", n), Attrs: im.AttrValues{0: "sz", 1: "f"},
				Tags: []string{fmt.Sprint("t", n%50), fmt.Sprint("u", n%7)}}
			n++
		}
		if _, err := s.BulkLoad(context.Background(), 1, in, im.EditLimits{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "accounts/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N*batch), "cpu-µs/account")
}

// BenchmarkBulkLoadRawInsert is BenchmarkBulkLoad's same-run floor: the
// same rows inserted 500 per statement, in transactions of 20,000, into a
// table of the accounts columns without its two unique indexes, on a
// connection that does not fsync commits. Compare cpu-µs/account.
func BenchmarkBulkLoadRawInsert(b *testing.B) {
	db, err := openDB(filepath.Join(b.TempDir(), "raw.db"), false, 1, 256<<20, true)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE accounts (key INTEGER PRIMARY KEY AUTOINCREMENT, app INTEGER NOT NULL,
		ordinal INTEGER NOT NULL, id TEXT NOT NULL, type INTEGER NOT NULL, nick TEXT NOT NULL DEFAULT '',
		face_url TEXT NOT NULL DEFAULT '', attrs TEXT, tags TEXT)`); err != nil {
		b.Fatal(err)
	}
	row := `(?, ?, ?, 0, ?, ?, ?, ?)`
	st, err := db.Prepare(`INSERT INTO accounts (` + bulkInsertCols + `) VALUES ` + strings.Repeat(row+",", bulkInsertRows-1) + row)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	const batch = 20000
	args := make([]any, 0, 7*bulkInsertRows)
	n := 0
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		txst := tx.Stmt(st)
		for k := 0; k < batch; k += bulkInsertRows {
			args = args[:0]
			for range bulkInsertRows {
				attrs := im.AttrValues{0: "sz", 1: "f"}
				args = append(args, int64(1), int64(n), fmt.Sprintf("user%09d", n), "", "",
					encodeAttrs(&attrs), encodeStrings([]string{fmt.Sprint("t", n%50), fmt.Sprint("u", n%7)}))
				n++
			}
			if _, err := txst.Exec(args...); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "accounts/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N*batch), "cpu-µs/account")
}
