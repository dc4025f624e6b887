package jobs

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/identity"
)

// Limits of an import file.
const (
	MaxUploadBytes = 50 << 20
	MaxColumns     = 500
	MaxHeaderLen   = 200
	// MaxTraitValueLen bounds one trait value; a longer cell rejects its
	// row rather than making a person carry a document in a trait.
	MaxTraitValueLen = 8 << 10
	// PreviewRows is how many rows the upload answer shows.
	PreviewRows = 10
	// maxChunkBytes bounds a stored chunk, whatever its row count.
	maxChunkBytes = 1 << 20
)

// parsedUpload is a validated CSV file cut into chunks at row boundaries.
type parsedUpload struct {
	headers []string
	preview [][]string
	rows    int64
	chunks  []*Chunk
}

// parseUpload validates body as CSV with a header row and cuts it into
// chunks of at most chunkRows rows. Chunks are slices of body itself: the
// stored input is the uploaded file, byte for byte, split between rows.
func parseUpload(body []byte, chunkRows int) (*parsedUpload, error) {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")) // a BOM from spreadsheet programs
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, onramp.Errorf(onramp.EINVALID, "The file is empty; send a CSV file whose first line names the columns.")
	}
	if !utf8.Valid(body) {
		line := 1 + bytes.Count(body[:firstInvalidUTF8(body)], []byte("\n"))
		return nil, onramp.Errorf(onramp.EINVALID, "The file is not valid UTF-8 (line %d); save it as CSV UTF-8.", line)
	}
	r := csv.NewReader(bytes.NewReader(body))
	header, err := r.Read()
	if err != nil {
		return nil, csvError(err, 0)
	}
	if len(header) > MaxColumns {
		return nil, onramp.Errorf(onramp.EINVALID, "The file has %d columns; the limit is %d.", len(header), MaxColumns)
	}
	seen := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		header[i] = h
		switch {
		case h == "":
			return nil, onramp.Errorf(onramp.EINVALID, "Column %d of the header line has no name; every column needs one.", i+1)
		case len(h) > MaxHeaderLen:
			return nil, onramp.Errorf(onramp.EINVALID, "Column %d's name is longer than %d characters.", i+1, MaxHeaderLen)
		case hasControl(h):
			return nil, onramp.Errorf(onramp.EINVALID, "Column %d's name contains control characters.", i+1)
		}
		if j, dup := seen[h]; dup {
			return nil, onramp.Errorf(onramp.EINVALID, "Columns %d and %d are both named %q; names must be unique.", j+1, i+1, h)
		}
		seen[h] = i
	}
	up := &parsedUpload{headers: header}
	start := r.InputOffset()
	cur := &Chunk{Part: PartInput, FirstRow: 1}
	flush := func(end int64) {
		cur.Data = body[start:end]
		up.chunks = append(up.chunks, cur)
		start = end
		cur = &Chunk{Part: PartInput, Seq: len(up.chunks), FirstRow: up.rows + 1}
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, csvError(err, len(header))
		}
		up.rows++
		if len(up.preview) < PreviewRows {
			up.preview = append(up.preview, rec)
		}
		cur.Rows++
		if end := r.InputOffset(); cur.Rows >= chunkRows || end-start >= maxChunkBytes {
			flush(end)
		}
	}
	if cur.Rows > 0 {
		flush(r.InputOffset())
	}
	if up.rows == 0 {
		return nil, onramp.Errorf(onramp.EINVALID, "The file has a header line but no rows.")
	}
	return up, nil
}

// csvError turns a CSV reader error into a precise 400.
func csvError(err error, columns int) error {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		if errors.Is(err, io.EOF) {
			return onramp.Errorf(onramp.EINVALID, "The file is empty; send a CSV file whose first line names the columns.")
		}
		return onramp.Errorf(onramp.EINVALID, "The file is not valid CSV: %v.", err)
	}
	if errors.Is(pe.Err, csv.ErrFieldCount) {
		return onramp.Errorf(onramp.EINVALID, "Line %d has a different number of columns than the header line (%d).", pe.StartLine, columns)
	}
	return onramp.Errorf(onramp.EINVALID, "The file is not valid CSV at line %d, column %d: %v.", pe.Line, pe.Column, pe.Err)
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}

// readChunk parses a stored input chunk.
func readChunk(c *Chunk, columns int) ([][]string, error) {
	r := csv.NewReader(bytes.NewReader(c.Data))
	r.FieldsPerRecord = columns
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("jobs: input chunk %d: %w", c.Seq, err)
	}
	return recs, nil
}

// Column targets of an import mapping.
const (
	mapEmail    = "identifier:email"
	mapUserID   = "identifier:user_id"
	mapPhone    = "identifier:phone"
	mapExternal = "identifier:external:"
	mapTrait    = "trait:"
	mapIgnore   = "ignore"
)

// column is what one CSV column becomes.
type column struct {
	index  int
	header string
	// idType is the identifier type of an identifier column ("" for a
	// trait); trait is the trait name of a trait column.
	idType string
	trait  string
}

// plan is a validated mapping, ready to turn rows into identify calls.
type plan struct {
	columns []column
}

// compileMapping validates a mapping against the file's headers. Headers
// the mapping does not name are ignored, as if mapped to "ignore".
func compileMapping(headers []string, mapping map[string]string) (*plan, error) {
	if len(mapping) == 0 {
		return nil, onramp.Errorf(onramp.EINVALID, `"mapping" is required: an object from column name to identifier:email, identifier:user_id, identifier:phone, identifier:external:<type>, trait:<name> or ignore.`)
	}
	index := make(map[string]int, len(headers))
	for i, h := range headers {
		index[h] = i
	}
	// Sorted, so the first error reported is the same on every try.
	names := make([]string, 0, len(mapping))
	for h := range mapping {
		names = append(names, h)
	}
	sort.Strings(names)
	p := &plan{}
	ids, traits := map[string]string{}, map[string]string{}
	for _, h := range names {
		target := strings.TrimSpace(mapping[h])
		i, ok := index[h]
		if !ok {
			return nil, onramp.Errorf(onramp.EINVALID, "The mapping names column %q, which the file does not have; its columns are %s.", h, quoteList(headers))
		}
		c := column{index: i, header: h}
		switch {
		case target == mapIgnore:
			continue
		case target == mapEmail:
			c.idType = identity.Email
		case target == mapUserID:
			c.idType = identity.UserID
		case target == mapPhone:
			c.idType = identity.Phone
		case strings.HasPrefix(target, mapExternal):
			t := strings.TrimPrefix(target, mapExternal)
			switch {
			case !identity.ValidType(t):
				return nil, onramp.Errorf(onramp.EINVALID, "Column %q: the external id type %q must be 1 to 64 lower-case letters, digits or underscores.", h, t)
			case t == identity.Email || t == identity.Phone || t == identity.UserID:
				return nil, onramp.Errorf(onramp.EINVALID, "Column %q: map it as identifier:%s, not as an external id.", h, t)
			case t == identity.AnonymousID:
				return nil, onramp.Errorf(onramp.EINVALID, "Column %q: anonymous ids name a browser, not a person; they cannot be imported.", h)
			}
			c.idType = t
		case strings.HasPrefix(target, mapTrait):
			name := strings.TrimSpace(strings.TrimPrefix(target, mapTrait))
			switch {
			case name == "" || len(name) > MaxHeaderLen || hasControl(name):
				return nil, onramp.Errorf(onramp.EINVALID, "Column %q: the trait name must be 1 to %d characters, without control characters.", h, MaxHeaderLen)
			case name == "email" || name == "phone":
				// Segment reads traits.email and traits.phone as identifiers.
				return nil, onramp.Errorf(onramp.EINVALID, "Column %q: map it as identifier:%s; the %s trait is set from that identifier.", h, name, name)
			}
			if prev, dup := traits[name]; dup {
				return nil, onramp.Errorf(onramp.EINVALID, "Columns %q and %q both map to trait %q.", prev, h, name)
			}
			traits[name] = h
			c.trait = name
		default:
			return nil, onramp.Errorf(onramp.EINVALID, "Column %q: %q is not a mapping; use identifier:email, identifier:user_id, identifier:phone, identifier:external:<type>, trait:<name> or ignore.", h, target)
		}
		if c.idType != "" {
			if prev, dup := ids[c.idType]; dup {
				return nil, onramp.Errorf(onramp.EINVALID, "Columns %q and %q both map to identifier %s; a row names one %s.", prev, h, c.idType, c.idType)
			}
			ids[c.idType] = h
		}
		p.columns = append(p.columns, c)
	}
	if len(ids) == 0 {
		return nil, onramp.Errorf(onramp.EINVALID, "The mapping has no identifier column; map at least one column to identifier:email, identifier:user_id, identifier:phone or identifier:external:<type>.")
	}
	// File order, so a row's first bad cell is the one reported.
	sort.Slice(p.columns, func(a, b int) bool { return p.columns[a].index < p.columns[b].index })
	return p, nil
}

func quoteList(ss []string) string {
	q := make([]string, 0, min(len(ss), 20))
	for i, s := range ss {
		if i == 20 {
			q = append(q, "…")
			break
		}
		q = append(q, strconv.Quote(s))
	}
	return strings.Join(q, ", ")
}

// externalID is one entry of context.externalIds, as Segment sends them.
type externalID struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Collection string `json:"collection"`
	Encoding   string `json:"encoding"`
}

// importMessage is the Segment identify call a row becomes.
type importMessage struct {
	Type      string            `json:"type"`
	MessageID string            `json:"messageId"`
	UserID    string            `json:"userId,omitempty"`
	Traits    map[string]string `json:"traits,omitempty"`
	Context   importContext     `json:"context"`
}

type importContext struct {
	ExternalIDs []externalID `json:"externalIds,omitempty"`
	// Import names the job and row, so a timeline event leads back to
	// where it came from.
	Import struct {
		JobID string `json:"job_id"`
		Row   int64  `json:"row"`
	} `json:"import"`
}

// MessageID is the identify call's messageId for a row: the same on every
// attempt, so a resumed batch is deduplicated by ingest.
func MessageID(jobID string, row int64) string {
	return "import-" + jobID + "-" + strconv.FormatInt(row, 10)
}

// message turns one row into an identify call, or says why the row is
// rejected.
func (p *plan) message(jobID string, row int64, rec []string) (json.RawMessage, string) {
	m := importMessage{Type: "identify", MessageID: MessageID(jobID, row)}
	m.Context.Import.JobID, m.Context.Import.Row = jobID, row
	traits := map[string]string{}
	found := false
	for _, c := range p.columns {
		v := strings.TrimSpace(rec[c.index])
		if v == "" {
			continue
		}
		if c.trait != "" {
			if len(v) > MaxTraitValueLen {
				return nil, fmt.Sprintf("Column %q is longer than %d bytes.", c.header, MaxTraitValueLen)
			}
			traits[c.trait] = v
			continue
		}
		if _, ok := identity.Normalize(c.idType, v); !ok {
			return nil, identifierProblem(c, v)
		}
		found = true
		switch c.idType {
		case identity.Email:
			traits["email"] = v
		case identity.Phone:
			traits["phone"] = v
		case identity.UserID:
			m.UserID = v
		default:
			m.Context.ExternalIDs = append(m.Context.ExternalIDs, externalID{ID: v, Type: c.idType, Collection: "users", Encoding: "none"})
		}
	}
	if !found {
		return nil, "No identifier: every column mapped to an identifier is empty."
	}
	if len(traits) > 0 {
		m.Traits = traits
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, "The row could not be encoded."
	}
	return b, ""
}

// identifierProblem says why v is not a usable identifier.
func identifierProblem(c column, v string) string {
	shown := v
	if len(shown) > 60 {
		shown = shown[:60] + "…"
	}
	switch {
	case len(v) > identity.MaxIdentifierLen:
		return fmt.Sprintf("Column %q is longer than %d bytes, the limit of an identifier.", c.header, identity.MaxIdentifierLen)
	case hasControl(v):
		return fmt.Sprintf("Column %q contains control characters.", c.header)
	case identity.Blocked(v):
		return fmt.Sprintf("Column %q: %q is a placeholder value, which never identifies anyone.", c.header, shown)
	case c.idType == identity.Email:
		return fmt.Sprintf("Column %q: %q is not a valid email address.", c.header, shown)
	case c.idType == identity.Phone:
		return fmt.Sprintf("Column %q: %q is not a valid phone number (7 to 15 digits, an optional leading +).", c.header, shown)
	}
	return fmt.Sprintf("Column %q: %q is not a usable identifier.", c.header, shown)
}
