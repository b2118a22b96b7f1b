package postgres

import (
	"context"
	"fmt"

	"timd/internal/im"
)

// narrowQuery is the narrow read of get_attr (column attrs) and get_tag
// (tags): one statement of fixed text per column, which pgx prepares once
// per connection, joining the ids (one array parameter) to their accounts
// and reading only the column asked for.
const narrowQuery = `SELECT u.i, a.type, a.%s FROM unnest($2::text[]) WITH ORDINALITY AS u(id, i)
	JOIN accounts a ON a.app = $1 AND a.id = u.id`

var (
	attrsOfQuery = fmt.Sprintf(narrowQuery, "attrs")
	tagsOfQuery  = fmt.Sprintf(narrowQuery, "tags")
)

// readNarrow runs q for ids and calls set with the position in ids and the
// column of each account found; of two accounts an id names, the
// RegistrationID (type 1) wins over the UserID.
func (s *Store) readNarrow(ctx context.Context, which, q string, app uint64, ids []string,
	set func(pos int, col []string)) error {
	if len(ids) == 0 {
		return nil
	}
	rows, err := s.pool.Query(ctx, q, int64(app), ids)
	if err != nil {
		return dbErr("read "+which, err)
	}
	defer rows.Close()
	types := make([]int16, len(ids))
	for i := range types {
		types[i] = -1
	}
	var pos int64
	var typ int16
	var col []string
	for rows.Next() {
		if err := rows.Scan(&pos, &typ, &col); err != nil {
			return dbErr("read "+which, err)
		}
		if pos < 1 || pos > int64(len(ids)) {
			return fmt.Errorf("postgres: narrow read position %d of %d ids", pos, len(ids))
		}
		if i := int(pos - 1); typ > types[i] {
			types[i] = typ
			set(i, col)
		}
		col = nil
	}
	return dbErr("read "+which, rows.Err())
}

// ReadAttrs returns the attribute values of the accounts ids name.
func (s *Store) ReadAttrs(ctx context.Context, app uint64, ids []string) ([]im.FoundAttrs, error) {
	out := make([]im.FoundAttrs, len(ids))
	err := s.readNarrow(ctx, "attributes", attrsOfQuery, app, ids, func(i int, col []string) {
		out[i] = im.FoundAttrs{Found: true}
		copy(out[i].Attrs[:], col)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReadTags returns the tags of the accounts ids name.
func (s *Store) ReadTags(ctx context.Context, app uint64, ids []string) ([]im.FoundTags, error) {
	out := make([]im.FoundTags, len(ids))
	err := s.readNarrow(ctx, "tags", tagsOfQuery, app, ids, func(i int, col []string) {
		if len(col) == 0 {
			col = nil
		}
		out[i] = im.FoundTags{Found: true, Tags: col}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
